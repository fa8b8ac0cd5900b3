"""The monitor worker, `python -m services.monitor.worker`: its outbox relay and its event consumers."""

from services.monitor import consumers
from services.monitor.config import get_settings
from shared.worker import run_worker

HEALTH_PORT = 9103


def main() -> int:
    return run_worker("monitor", get_settings(), consumers=consumers.CONSUMERS, health_port=HEALTH_PORT)


if __name__ == "__main__":
    raise SystemExit(main())
