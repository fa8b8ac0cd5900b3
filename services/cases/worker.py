"""The cases worker, `python -m services.cases.worker`: its outbox relay and its event consumers."""

from services.cases import consumers
from services.cases.config import get_settings
from shared.worker import run_worker

HEALTH_PORT = 9102


def main() -> int:
    return run_worker("cases", get_settings(), consumers=consumers.CONSUMERS, health_port=HEALTH_PORT)


if __name__ == "__main__":
    raise SystemExit(main())
