"""The one template: the files compose and Kubernetes use are what it renders today, and Envoy itself
accepts every profile's file (`envoy --mode validate`, which knows every field and extension)."""

from __future__ import annotations

import json
import subprocess
import sys

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.devinfra import envoy
from tests.conftest import ROOT


def test_the_committed_compose_and_kubernetes_files_are_rendered_from_the_template():
    stale = [str(path.relative_to(ROOT)) for path, text in envoy.rendered_files().items()
             if not path.exists() or path.read_text() != text]
    assert not stale, f"run `make envoy-config`: {stale}"


def _public_pem() -> str:
    return Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _development() -> envoy.EnvoyValues:
    return envoy.EnvoyValues(jwks=envoy.jwks_document(_public_pem()))


@pytest.mark.parametrize("profile", envoy.PROFILES)
def test_envoy_accepts_each_profile(profile):
    values = envoy.profile_values(profile)
    assert values.jwks_file == "/etc/hall/jwks.json" and values.jwks is None  # the key comes from a secret
    envoy.validate_values(values)


def test_envoy_accepts_the_development_file(tmp_path):
    path = tmp_path / "envoy.yaml"
    path.write_text(envoy.render(_development()))
    envoy.validate(path)


def test_a_rendering_needs_exactly_one_source_of_the_signing_key():
    with pytest.raises(ValueError, match="exactly one"):
        envoy.EnvoyValues()
    with pytest.raises(ValueError, match="exactly one"):
        envoy.EnvoyValues(jwks="{}", jwks_file="/etc/hall/jwks.json")


def test_the_jwks_is_the_signing_keys_public_half(tmp_path):
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    (tmp_path / "public.pem").write_text(pem)
    printed = subprocess.run([sys.executable, "-m", "shared.devinfra.envoy", "jwks", str(tmp_path / "public.pem")],
                             cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
    (key,) = json.loads(printed)["keys"]
    assert key | {"kid": None} == {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": None,
                                   "x": key["x"]}
    token = jwt.encode({"sub": "u1"}, private, algorithm="EdDSA")
    assert jwt.decode(token, jwt.PyJWK(key).key, algorithms=["EdDSA"])["sub"] == "u1"
    with pytest.raises(ValueError, match="Ed25519"):
        envoy.jwks_document(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())


def test_a_broken_file_is_refused_with_envoys_reason(tmp_path):
    path = tmp_path / "envoy.yaml"
    path.write_text(envoy.render(_development()).replace("stream_idle_timeout:", "stream_idle_timeuot:"))
    with pytest.raises(ValueError, match="stream_idle_timeuot"):
        envoy.validate(path)


def test_compose_and_kubernetes_mount_the_rendered_files():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    gateway = compose["services"]["gateway"]
    assert gateway["image"].startswith("envoyproxy/envoy:v1.40")
    assert "./envoy/rendered/compose.yaml:/etc/envoy/envoy.yaml:ro" in gateway["volumes"]
    assert any(v.endswith(":/etc/hall/jwks.json:ro") for v in gateway["volumes"])
    deployment, _service = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "gateway.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    configmap = yaml.safe_load(envoy.K8S_CONFIGMAP.read_text())
    assert pod["volumes"] == [{"name": "config", "configMap": {"name": configmap["metadata"]["name"]}},
                              {"name": "jwks", "secret": {"secretName": "hall-gateway-jwks",
                                                          "items": [{"key": "jwks.json", "path": "jwks.json"}]}}]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts == {"config": "/etc/envoy", "jwks": "/etc/hall"}
    assert configmap["data"]["envoy.yaml"] == envoy.rendered_path("kubernetes").read_text()


def test_every_service_the_compose_gateway_routes_to_is_a_container_of_the_compose_file():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    upstreams = {up.host for up in envoy.profile_values("compose").upstreams}
    assert "terminals" in upstreams  # the screens are routed (and health-checked) too
    assert upstreams <= set(compose["services"]), upstreams - set(compose["services"])
    assert upstreams <= set(compose["services"]["gateway"]["depends_on"])


def test_every_upstream_of_a_profile_is_placed_and_no_stray_name_is_accepted(tmp_path, monkeypatch):
    for profile in envoy.PROFILES:
        values = envoy.profile_values(profile)
        assert all(up.host != "127.0.0.1" for up in values.upstreams), profile
    (tmp_path / "values").mkdir()
    (tmp_path / "values" / "typo.yaml").write_text("upstream_addresses: {quuee: 'q:80'}\n")
    monkeypatch.setattr(envoy, "ENVOY_DIR", tmp_path)
    with pytest.raises(ValueError, match="quuee"):
        envoy.profile_values("typo")


def test_the_check_command_fails_on_a_stale_file(tmp_path, monkeypatch):
    target = tmp_path / "compose.yaml"
    target.write_text("# edited by hand\n")
    monkeypatch.setattr(envoy, "rendered_files", lambda: {target: "the template's text\n"})
    assert envoy.main(["check"]) == 1
    assert envoy.main(["render"]) == 0 and target.read_text() == "the template's text\n"
    assert envoy.main(["check"]) == 0


def test_the_render_command_runs_as_make_calls_it():
    result = subprocess.run([sys.executable, "-m", "shared.devinfra.envoy", "check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
