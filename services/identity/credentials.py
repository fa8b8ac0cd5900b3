"""Passwords (argon2id), refresh tokens and device keys: how each is made, stored and checked.

The argon2 parameters are RFC 9106's memory-constrained choice scaled to a county hall's server:
12 MiB, 3 passes, one lane: about 18 ms a verification and 24 ms a whole sign-in on the development machine (target ≤ 50 ms; bench/identity_bench.py).
"""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASHER = PasswordHasher(time_cost=3, memory_cost=12 * 1024, parallelism=1, hash_len=32, salt_len=16)
DEVICE_KEY_PREFIX = "hk_"


def hash_password(password: str) -> str:
    return HASHER.hash(password)


@cache
def dummy_hash() -> str:
    """The hash an unknown user's attempt is checked against, so that it costs one verification too."""
    return HASHER.hash(secrets.token_urlsafe(24))


def verify_password(password_hash: str, password: str) -> bool:
    """One argon2 verification; False for a wrong password (or an unreadable hash)."""
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def new_device_key() -> str:
    """`hk_` and 43 random URL-safe characters (256 bits): shown once, stored as a keyed hash."""
    return DEVICE_KEY_PREFIX + secrets.token_urlsafe(32)


def new_id() -> str:
    return secrets.token_hex(16)
