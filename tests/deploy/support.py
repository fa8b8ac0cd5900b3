"""What the compose and Kubernetes checks share: which of our processes a command runs, and which environment
variables a settings class reads."""

from __future__ import annotations

import re

from pydantic_settings import BaseSettings

_APP = re.compile(r"services\.(\w+)\.main:create_app")
_WORKER = re.compile(r"services\.(\w+)\.worker$")


def process_of(command: list[str]) -> tuple[str, str] | None:
    """(kind, service) of a command running our code: ("api", "queue"), ("worker", "cases")..., else None."""
    joined = " ".join(command)
    if match := _APP.search(joined):
        return "api", match[1]
    if match := _WORKER.search(joined):
        return "worker", match[1]
    return None


def env_names(settings: type[BaseSettings]) -> tuple[set[str], set[str]]:
    """(every variable the class reads, the required ones), with its env prefix; nested models by `__`."""
    config = settings.model_config
    prefix = str(config.get("env_prefix", ""))
    accepted, required = set(), set()
    for name, field in settings.model_fields.items():
        if name == "hall":
            continue  # its own class, read with HALL_
        key = f"{prefix}{name}".upper()
        accepted.add(key)
        if field.is_required():
            required.add(key)
        model = field.annotation
        if config.get("env_nested_delimiter") and isinstance(model, type) and hasattr(model, "model_fields"):
            accepted |= {f"{key}__{sub}".upper() for sub in model.model_fields}
    return accepted, required
