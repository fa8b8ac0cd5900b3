"""Development secrets: generated once under var/secrets/ so `make run` needs nothing by hand.

Production sets the same HALL_* / IDENTITY_* / NOTIFY_* variables from its secret store instead.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.pii import new_seal_keypair


def generate() -> dict[str, str]:
    signing = Ed25519PrivateKey.generate()
    private_pem = signing.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    public_pem = signing.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    seal_private, seal_public = new_seal_keypair()
    return {
        "HALL_JWT_PUBLIC_KEY": public_pem,
        "IDENTITY_JWT_PRIVATE_KEY": private_pem,  # the identity service signs every token
        "GATEWAY_JWT_PRIVATE_KEY": private_pem,  # the same key, the name `python -m shared.tokens` reads
        "HALL_PII_HASH_KEY": base64.b64encode(os.urandom(32)).decode(),
        "HALL_PII_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "HALL_NOTIFY_SEAL_PUBLIC_KEY": seal_public,
        "NOTIFY_SEAL_PRIVATE_KEY": seal_private,
    }


def ensure(var_dir: Path) -> dict[str, str]:
    """Load var/secrets/dev.json, creating it on first use (mode 0600)."""
    path = var_dir / "secrets" / "dev.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())  # written below from generate()
        if "IDENTITY_JWT_PRIVATE_KEY" not in stored and "GATEWAY_JWT_PRIVATE_KEY" in stored:
            # written before the identity service: its signing key is the one the services already trust
            stored["IDENTITY_JWT_PRIVATE_KEY"] = stored["GATEWAY_JWT_PRIVATE_KEY"]
        return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    secrets = generate()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(secrets, indent=1))
    tmp.chmod(0o600)
    tmp.replace(path)
    return secrets


def apply(var_dir: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Put the development secrets into `environ` (default os.environ) where not already set."""
    env = os.environ if environ is None else environ
    for key, value in ensure(var_dir).items():
        env.setdefault(key, value)
    return dict(env)
