"""The development signing key: identity's, under both names, also in a dev.json written before identity."""

import json

from shared import devsecrets


def test_the_identity_key_is_the_key_the_dev_tokens_and_services_use(tmp_path):
    secrets = devsecrets.ensure(tmp_path)
    assert secrets["IDENTITY_JWT_PRIVATE_KEY"] == secrets["GATEWAY_JWT_PRIVATE_KEY"]


def test_a_dev_json_from_before_identity_gets_its_gateway_key_as_identitys(tmp_path):
    old = devsecrets.generate()
    del old["IDENTITY_JWT_PRIVATE_KEY"]
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "dev.json").write_text(json.dumps(old))
    assert devsecrets.ensure(tmp_path)["IDENTITY_JWT_PRIVATE_KEY"] == old["GATEWAY_JWT_PRIVATE_KEY"]
