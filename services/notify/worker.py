"""The notify worker, `python -m services.notify.worker`: its outbox relay and its event consumers."""

from services.notify import consumers
from services.notify.config import get_settings
from shared.worker import run_worker

HEALTH_PORT = 9104


def main() -> int:
    return run_worker("notify", get_settings(), consumers=consumers.CONSUMERS, health_port=HEALTH_PORT)


if __name__ == "__main__":
    raise SystemExit(main())
