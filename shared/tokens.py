"""Mint development tokens: `python -m shared.tokens --role clerk --center C001 [--window 3] [--department D01]`.

Reads GATEWAY_JWT_PRIVATE_KEY, or the development key under var/secrets/ that `make run` created.
"""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from pathlib import Path

from shared import devsecrets
from shared.auth import Role, mint_token


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    parser.add_argument("--center", action="append", default=[], help="repeatable; '*' spans every centre")
    parser.add_argument("--subject", default="dev-user")
    parser.add_argument("--window")
    parser.add_argument("--department")
    parser.add_argument("--device")
    parser.add_argument("--minutes", type=int, default=12 * 60)
    args = parser.parse_args(argv)
    key = os.environ.get("GATEWAY_JWT_PRIVATE_KEY") or devsecrets.ensure(Path("var"))["GATEWAY_JWT_PRIVATE_KEY"]
    print(mint_token(key, subject=args.subject, role=args.role, centers=args.center, window=args.window,
                     department=args.department, device=args.device, ttl=timedelta(minutes=args.minutes)))


if __name__ == "__main__":
    main()
