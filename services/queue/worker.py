"""The queue worker, `python -m services.queue.worker`: relays its events to Kafka; keeps the calendar copy."""

from services.queue import consumers
from services.queue.config import get_settings
from shared.worker import run_worker

HEALTH_PORT = 9101


def main() -> int:
    return run_worker("queue", get_settings(), consumers=consumers.CONSUMERS, health_port=HEALTH_PORT)


if __name__ == "__main__":
    raise SystemExit(main())
