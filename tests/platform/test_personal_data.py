"""Personal data: the keyed hash is stable across services, masks follow DOMAIN.md, the encrypted form
opens with the deployment key, the sealed form only with notify's key, and the leak detector bites."""

import base64
import io
import logging
import os

import pytest
from cryptography.exceptions import InvalidTag

from shared import pii
from shared.logging import JsonFormatter

ID = "11010519491231002X"  # a valid checksum (GB 11643 example)
PHONE = "13812345678"


def _pd(hash_key: bytes | None = None) -> pii.PersonalData:
    private, public = pii.new_seal_keypair()
    pd = pii.PersonalData(hash_key or b"k" * 32, os.urandom(32), public)
    pd.notify_private = private  # type: ignore[attr-defined]
    return pd


def test_masks_follow_the_domain_examples():
    assert pii.mask_id_card("320102199001011234") == "3201**********1234"
    assert pii.mask_phone(PHONE) == "138****5678"


def test_hash_is_stable_across_services_sharing_the_key_and_differs_by_key():
    queue, cases = _pd(b"deployment-key" * 2), _pd(b"deployment-key" * 2)
    assert queue.hash_phone(PHONE) == cases.hash_phone("+86 138-1234-5678")
    assert queue.hash_id_card(ID) == cases.hash_id_card(ID.lower())
    assert _pd(b"other-key").hash_phone(PHONE) != queue.hash_phone(PHONE)
    assert queue.hash_phone(PHONE) != pii.keyed_hash(b"deployment-key" * 2, "id", PHONE)  # kinds never collide


def test_stored_forms_carry_no_clear_value_and_decrypt_for_authorised_use():
    pd = _pd()
    forms = pd.id_card(ID)
    assert forms["masked"] == "1101**********002X"
    assert ID not in "".join(forms.values())
    assert pd.decrypt(forms["encrypted"]) == ID


def test_sealed_contact_opens_only_with_notifys_key():
    pd = _pd()
    sealed = pd.phone(PHONE)["sealed_for_notify"]
    assert PHONE not in sealed
    assert pii.unseal(pd.notify_private, sealed) == PHONE
    intruder_private, _ = pii.new_seal_keypair()
    with pytest.raises(InvalidTag):
        pii.unseal(intruder_private, sealed)
    with pytest.raises(ValueError):  # the deployment's symmetric key is not notify's key either
        pd.decrypt(sealed)


@pytest.mark.parametrize("bad,field", [("12345", "phone"), ("23812345678", "phone")])
def test_bad_phone_numbers_are_refused_with_the_field(bad, field):
    with pytest.raises(pii.PersonalDataError) as err:
        pii.normalize_phone(bad)
    assert err.value.field == field


def test_id_number_with_a_wrong_checksum_is_refused():
    with pytest.raises(pii.PersonalDataError, match="checksum"):
        pii.normalize_id_card("110105194912310021")


def test_leak_detector_catches_a_planted_phone_number_in_a_log_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("queue"))
    log = logging.getLogger("test.leak")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("ticket issued", extra={"phone_masked": pii.mask_phone(PHONE)})
        pii.assert_no_personal_data(stream.getvalue(), PHONE)  # the masked form is fine
        log.warning("ticket issued", extra={"phone": PHONE})
    finally:
        log.removeHandler(handler)
    with pytest.raises(AssertionError, match="personal data in clear"):
        pii.assert_no_personal_data(stream.getvalue())
    with pytest.raises(AssertionError):
        pii.assert_no_personal_data(f"id={ID}")


def test_seal_key_material_is_base64_raw_x25519():
    private, public = pii.new_seal_keypair()
    assert len(base64.b64decode(private)) == len(base64.b64decode(public)) == 32
