"""The compose stack's secrets as env files: `python -m shared.devinfra.compose_secrets [dir]` (default
deploy/secrets/, which git ignores) writes, mode 0600, each only once (a second run keeps what exists, so
tokens and sealed contacts stay readable):

- `hall.env`: what every service process shares (the token-verifying key, the personal-data keys, notify's
  sealing public key);
- `<svc>.env` for queue, cases, monitor, notify, identity: the service's database URL with the database
  role's password (the `migrate` container reads all five and nothing else);
- `notify-keys.env`, `identity-keys.env`: the private keys only that service holds (notify's unsealing key,
  identity's token-signing key);
- `postgres.env` (the server's password), `grafana.env` (Grafana's admin password), `jwks.json` (the
  token-verifying key as Envoy reads it).

Values are written double-quoted with `\\n` for line breaks, which compose (and python-dotenv) turn back
into the PEM's lines. A real installation writes the same files from its secret store.
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

from shared.devinfra.envoy import ROOT, jwks_document
from shared.devsecrets import generate

DEFAULT_DIR = ROOT / "deploy" / "secrets"
SERVICES = ("queue", "cases", "monitor", "notify", "identity")
DB_ROLE = "hall"
SHARED_KEYS = ("HALL_JWT_PUBLIC_KEY", "HALL_PII_HASH_KEY", "HALL_PII_ENCRYPTION_KEY", "HALL_NOTIFY_SEAL_PUBLIC_KEY")
OWN_KEYS = {"notify": ("NOTIFY_SEAL_PRIVATE_KEY",), "identity": ("IDENTITY_JWT_PRIVATE_KEY",)}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def env_file(values: dict[str, str]) -> str:
    return "".join(f"{key}={_quote(value)}\n" for key, value in values.items())


def files(keys: dict[str, str], db_password: str, grafana_password: str) -> dict[str, str]:
    """The files' names and contents for one set of keys and passwords."""
    out = {"hall.env": env_file({k: keys[k] for k in SHARED_KEYS}),
           "postgres.env": env_file({"POSTGRES_USER": DB_ROLE, "POSTGRES_PASSWORD": db_password}),
           "grafana.env": env_file({"GF_SECURITY_ADMIN_PASSWORD": grafana_password}),
           "jwks.json": jwks_document(keys["HALL_JWT_PUBLIC_KEY"])}
    for service in SERVICES:
        out[f"{service}.env"] = env_file({f"{service.upper()}_DATABASE_URL":
                                          f"postgresql+asyncpg://{DB_ROLE}:{db_password}@postgres:5432/hall_{service}"})
    for service, names in OWN_KEYS.items():
        out[f"{service}-keys.env"] = env_file({k: keys[k] for k in names})
    return out


def write(directory: Path) -> list[str]:
    """Write the files missing under `directory`; the names written. An existing set is kept whole: the keys
    and passwords of the new files are those of the old where they share them (read back from hall.env and
    postgres.env), so a file deleted by mistake is made again consistent with the rest."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    keys = generate()
    db_password, grafana_password = secrets.token_urlsafe(24), secrets.token_urlsafe(18)
    existing = {name: _read(directory / name) for name in ("hall.env", "postgres.env", "notify-keys.env",
                                                         "identity-keys.env")}
    keys |= {k: v for name in ("hall.env", "notify-keys.env", "identity-keys.env") for k, v in existing[name].items()
             if k in keys}
    db_password = existing["postgres.env"].get("POSTGRES_PASSWORD", db_password)
    written = []
    for name, content in files(keys, db_password, grafana_password).items():
        path = directory / name
        if path.exists():
            continue
        path.write_text(content)
        path.chmod(0o600)
        written.append(name)
    return written


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        key, _, raw = line.partition("=")
        values[key] = json.loads(raw) if raw.startswith('"') else raw  # our quoting is JSON's for these
    return values


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv else DEFAULT_DIR
    written = write(directory)
    print(f"{directory}: {', '.join(written) if written else 'every file there already'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
