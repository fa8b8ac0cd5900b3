"""Personal data (ID card and phone numbers): keyed hash for matching, masked form for display,
encrypted form for authorised use, and a sealed form only notify can open.

One hash key for the whole deployment, so every service matches the same person the same way.
Nothing here logs its input.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ID_CARD_RE = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])")
PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_ENC_PREFIX = "v1."
_SEAL_INFO = b"hall-seal-v1"


class PersonalDataError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def normalize_id_card(value: str) -> str:
    """A mainland resident ID number: 18 characters, the last a digit or X (checksum verified)."""
    v = value.strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", v):
        raise PersonalDataError("id_card", "must be 18 characters: 17 digits and a digit or X")
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(c) * w for c, w in zip(v[:17], weights, strict=True)) % 11]
    if v[17] != check:
        raise PersonalDataError("id_card", "checksum digit does not match")
    return v


def normalize_phone(value: str) -> str:
    """A mainland mobile number, 11 digits; +86 / spaces / dashes are dropped."""
    v = re.sub(r"[\s-]", "", value.strip())
    v = re.sub(r"^(\+?86)", "", v)
    if not re.fullmatch(r"1[3-9]\d{9}", v):
        raise PersonalDataError("phone", "must be an 11-digit mainland mobile number")
    return v


def mask_id_card(v: str) -> str:
    """`320102199001011234` -> `3201**********1234`."""
    return v[:4] + "*" * (len(v) - 8) + v[-4:]


def normalize_email(value: str) -> str:
    """An e-mail address, lower-cased; only its shape is checked (one @, a dot in the domain)."""
    v = value.strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v):
        raise PersonalDataError("email", "must be an e-mail address")
    return v


def mask_email(v: str) -> str:
    """`zhang.san@example.cn` -> `z***@example.cn`."""
    local, _, domain = v.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(v: str) -> str:
    """`13812345678` -> `138****5678`."""
    return v[:3] + "****" + v[-4:]


def mask_name(v: str) -> str:
    """A person's name for a public board: the first character kept. `张三` -> `张*`, `欧阳小明` -> `欧***`."""
    v = v.strip()
    return v[:1] + "*" * max(1, len(v) - 1)


def keyed_hash(key: bytes, kind: str, normalized: str) -> str:
    """HMAC-SHA256 over kind and value, hex: stable across services sharing the deployment key."""
    return hmac.new(key, f"{kind}:{normalized}".encode(), hashlib.sha256).hexdigest()


def encrypt(key: bytes, plaintext: str) -> str:
    nonce = os.urandom(12)
    return _ENC_PREFIX + base64.urlsafe_b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), None)).decode()


def decrypt(key: bytes, token: str) -> str:
    if not token.startswith(_ENC_PREFIX):
        raise ValueError("not an encrypted value")
    raw = base64.urlsafe_b64decode(token[len(_ENC_PREFIX):])
    return AESGCM(key).decrypt(raw[:12], raw[12:], None).decode()


def _seal_key(shared: bytes, eph: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO + eph + recipient).derive(shared)


def _raw(pub: X25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal(recipient_public_b64: str, plaintext: str) -> str:
    """Encrypt for notify alone (X25519 + HKDF + AES-GCM): only notify's private key opens it."""
    recipient = X25519PublicKey.from_public_bytes(base64.b64decode(recipient_public_b64))
    eph = X25519PrivateKey.generate()
    eph_pub = _raw(eph.public_key())
    key = _seal_key(eph.exchange(recipient), eph_pub, _raw(recipient))
    nonce = os.urandom(12)
    return base64.urlsafe_b64encode(eph_pub + nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), None)).decode()


def unseal(private_b64: str, sealed: str) -> str:
    private = X25519PrivateKey.from_private_bytes(base64.b64decode(private_b64))
    raw = base64.urlsafe_b64decode(sealed)
    eph_pub, nonce, ct = raw[:32], raw[32:44], raw[44:]
    key = _seal_key(private.exchange(X25519PublicKey.from_public_bytes(eph_pub)), eph_pub,
                    _raw(private.public_key()))
    return AESGCM(key).decrypt(nonce, ct, None).decode()


def new_seal_keypair() -> tuple[str, str]:
    """(private, public), base64 raw X25519 keys."""
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
    return base64.b64encode(raw_private).decode(), base64.b64encode(_raw(private.public_key())).decode()


class PersonalData:
    """The three stored forms of one value, ready for a row, plus what an event may carry."""

    def __init__(self, hash_key: bytes, encryption_key: bytes, notify_public_b64: str) -> None:
        self._hash_key = hash_key
        self._enc_key = encryption_key
        self._notify_public = notify_public_b64

    def id_card(self, raw: str) -> dict[str, str]:
        v = normalize_id_card(raw)
        return {"hash": keyed_hash(self._hash_key, "id", v), "masked": mask_id_card(v),
                "encrypted": encrypt(self._enc_key, v)}

    def phone(self, raw: str) -> dict[str, str]:
        v = normalize_phone(raw)
        return {"hash": keyed_hash(self._hash_key, "phone", v), "masked": mask_phone(v),
                "encrypted": encrypt(self._enc_key, v), "sealed_for_notify": seal(self._notify_public, v)}

    def email(self, raw: str) -> dict[str, str]:
        v = normalize_email(raw)
        return {"hash": keyed_hash(self._hash_key, "email", v), "masked": mask_email(v),
                "encrypted": encrypt(self._enc_key, v), "sealed_for_notify": seal(self._notify_public, v)}

    def seal_for_notify(self, plaintext: str) -> str:
        return seal(self._notify_public, plaintext)

    def keyed_hash(self, kind: str, value: str) -> str:
        """The deployment's keyed hash of any value (e.g. a device key: long and random, so HMAC suffices)."""
        return keyed_hash(self._hash_key, kind, value)

    def hash_id_card(self, raw: str) -> str:
        return keyed_hash(self._hash_key, "id", normalize_id_card(raw))

    def hash_phone(self, raw: str) -> str:
        return keyed_hash(self._hash_key, "phone", normalize_phone(raw))

    def encrypt(self, plaintext: str) -> str:
        """The encrypted form of any personal value (a name), for the few authorised uses."""
        return encrypt(self._enc_key, plaintext)

    def decrypt(self, token: str) -> str:
        return decrypt(self._enc_key, token)


def find_personal_data(text: str) -> list[str]:
    """Every ID-card-like or mobile-number-like run in `text` (for tests and log audits)."""
    return ID_CARD_RE.findall(text) + PHONE_RE.findall(text)


def assert_no_personal_data(text: str, *known_values: str) -> None:
    """Fail if `text` holds an ID or phone number in clear, or any of the given raw values.

    Any service's test can run its logs, events, feed frames and /metrics through this.
    """
    found = find_personal_data(text) + [v for v in known_values if v and v in text]
    if found:
        shown = ", ".join(sorted({mask_phone(f) if len(f) == 11 else f[:4] + "…" for f in found}))
        raise AssertionError(f"personal data in clear: {shown}")
