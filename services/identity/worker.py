"""The identity worker, `python -m services.identity.worker`: relays user.upserted / user.deactivated to Kafka."""

from services.identity import consumers
from services.identity.config import get_settings
from shared.worker import run_worker

HEALTH_PORT = 9105


def main() -> int:
    return run_worker("identity", get_settings(), consumers=consumers.CONSUMERS, health_port=HEALTH_PORT)


if __name__ == "__main__":
    raise SystemExit(main())
