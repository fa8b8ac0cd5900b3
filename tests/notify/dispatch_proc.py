"""The notify dispatcher in its own process, for the test that kills it mid-batch.

`python -m tests.notify.dispatch_proc --url <notify database>` (cwd: the repository root; the development
secrets in the environment, as the suite exports them). It runs the worker's dispatcher with its real
channels, test-sized batches and a short claim lease, until SIGTERM or SIGKILL."""

from __future__ import annotations

import argparse
import asyncio
import signal

from services.notify.channels.registry import build_channels, close_channels
from services.notify.config import Settings
from services.notify.dispatcher import Dispatcher
from shared.db import make_engine
from shared.logging import configure_logging


async def main(url: str, batch: int, concurrency: int, lease: float) -> None:
    settings = Settings(database_url=url, dispatch_batch=batch, dispatch_concurrency=concurrency,
                        send_lease_seconds=lease, dispatch_poll_seconds=0.1, retry_base_seconds=0.5)
    configure_logging("notify", "INFO")
    engine = make_engine(url, application_name="notify-dispatch-proc")
    channels = build_channels(settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await Dispatcher(engine, settings, channels).run(stop)
    finally:
        await close_channels(channels)
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--lease", type=float, default=2.0)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.batch, args.concurrency, args.lease))
