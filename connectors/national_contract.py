"""The national STI intake API v1, as code both sides share: signing, verification, checksums.

The contract is `contracts/national_intake_v1.openapi.yaml`; this module is what a province's
publisher (connectors/national_feed.py) and the stand-in intake (local/national_intake/) both
need from it, so the two cannot drift apart. Plain Python: no Airflow.

- A batch body is signed with a **detached JWS** (RFC 7515 appendix F, compact form
  `<protected>..<signature>`) with an **unencoded payload** (RFC 7797: `"b64": false`,
  `"crit": ["b64"]`), alg `EdDSA` (Ed25519). The JWS signing input is
  `BASE64URL(protected header) || "." || body bytes`, so the body is signed exactly as sent. The
  protected header binds the key id, the idempotency key and the manifest (record count, SHA-256
  of the body): none of them can be changed without the signature failing.
- The holdings checksum is order independent: the sum over the records of the first 15 hex
  digits (60 bits) of `sha256(record_key + ":" + content_digest)`, as a whole number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jwt
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.api_jws import PyJWS

CONTRACT_PATH = Path(__file__).resolve().parent / "contracts" / "national_intake_v1.openapi.yaml"
ALGORITHM = "EdDSA"
MAX_RECORDS = 10_000  # records per batch
MAX_SIGNATURE = 8 * 1024  # characters of an X-JWS-Signature: a header and 86 characters of it
_HEX = frozenset("0123456789abcdef")
_JWS = PyJWS()


class BatchRejected(Exception):
    """The intake refuses a whole batch: HTTP ``status``, the contract's ``error`` code and a
    ``detail`` for the sender's operators (never a secret)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail


def _load_contract() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with CONTRACT_PATH.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=loader)  # noqa: S506 (a safe loader)


_CONTRACT = _load_contract()

#: reason code -> (English, Vietnamese) text, from the contract's `x-reason-codes`.
REASON_CODES: dict[str, tuple[str, str]] = {
    code: (texts["en"], texts["vi"]) for code, texts in _CONTRACT["x-reason-codes"].items()
}
#: The national entities a batch may carry, from the contract's `Entity` schema.
ENTITIES: tuple[str, ...] = tuple(_CONTRACT["components"]["schemas"]["Entity"]["enum"])


def body_sha256(body: bytes) -> str:
    """The manifest's `X-Manifest-SHA256`: the lowercase hex SHA-256 of the body bytes."""
    return hashlib.sha256(body).hexdigest()


def sign_batch(
    body: bytes, idempotency_key: str, record_count: int, private_key_pem: str, key_id: str
) -> str:
    """The `X-JWS-Signature` header of a batch: a detached JWS over ``body`` by the province's
    Ed25519 key, binding the key id, the idempotency key and the manifest."""
    headers = {
        "typ": None,  # not a JWT: PyJWT leaves `typ` out when it is None
        "kid": key_id,
        "idempotency_key": idempotency_key,
        "record_count": record_count,
        "body_sha256": body_sha256(body),
    }
    return _JWS.encode(
        body, private_key_pem, algorithm=ALGORITHM, headers=headers, is_payload_detached=True
    )


def verify_batch(
    body: bytes,
    signature: str,
    idempotency_key: str,
    record_count: int,
    public_keys: Mapping[str, str],
) -> None:
    """Check a batch's signature and what it binds; raise BatchRejected when it does not hold.

    ``public_keys`` maps key id -> Ed25519 public key (PEM) of the sending province only, so a
    batch signed with another province's key is refused like a forged one. ``record_count`` is
    the manifest's (`X-Manifest-Record-Count`). Refusals: 401 ``signature_invalid`` (malformed
    JWS, unknown key id, wrong algorithm, a signature that does not verify over ``body``, or
    one made for another idempotency key); 400 ``manifest_mismatch`` (the signed record count
    or body hash differs from the manifest or the body).
    """
    if not signature or len(signature) > MAX_SIGNATURE:
        raise BatchRejected(401, "signature_invalid", "X-JWS-Signature is missing or too long")
    try:
        header = _JWS.get_unverified_header(signature)
    except jwt.PyJWTError:
        raise BatchRejected(401, "signature_invalid", "X-JWS-Signature is not a JWS") from None
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM:
        raise BatchRejected(401, "signature_invalid", f"the JWS alg must be {ALGORITHM}")
    if header.get("b64") is not False or signature.split(".")[1:2] != [""]:
        detail = 'the JWS must be detached with an unencoded payload ("b64": false, RFC 7797)'
        raise BatchRejected(401, "signature_invalid", detail)
    if not isinstance(kid, str) or kid not in public_keys:
        detail = "the JWS kid is not a key of the sending province"
        raise BatchRejected(401, "signature_invalid", detail)
    try:
        _JWS.decode_complete(
            signature, public_keys[kid], algorithms=[ALGORITHM], detached_payload=body
        )
    except jwt.PyJWTError:
        detail = "the signature does not verify over the body with the province's key"
        raise BatchRejected(401, "signature_invalid", detail) from None
    if header.get("idempotency_key") != idempotency_key:
        detail = "the signature was made for another Idempotency-Key"
        raise BatchRejected(401, "signature_invalid", detail)
    signed_count = header.get("record_count")
    if type(signed_count) is not int or signed_count != record_count:
        detail = f"the signed record_count {signed_count!r} is not the manifest's {record_count}"
        raise BatchRejected(400, "manifest_mismatch", detail)
    if header.get("body_sha256") != body_sha256(body):
        detail = "the signed body_sha256 is not the SHA-256 of the body"
        raise BatchRejected(400, "manifest_mismatch", detail)


def new_signing_key() -> tuple[str, str]:
    """A new Ed25519 key pair: (private key PEM, PKCS #8; public key PEM, SubjectPublicKeyInfo)."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def record_checksum(pairs: Iterable[tuple[str, str]]) -> int:
    """The order-independent checksum of (record_key, content_digest) pairs: the sum of
    ``int(sha256_hex(record_key + ":" + content_digest)[:15], 16)``. The intake sends it as a
    string of decimal digits (it outgrows 64 bits): compare ``int(summary["checksum"])``."""
    total = 0
    sha256 = hashlib.sha256
    for record_key, content_digest in pairs:
        digest = sha256(f"{record_key}:{content_digest}".encode()).digest()
        total += int.from_bytes(digest[:8], "big") >> 4  # the first 15 hex digits: 60 bits
    return total


def is_hex_sha256(text: object) -> bool:
    """Whether ``text`` is a lowercase hex SHA-256 (64 characters)."""
    return isinstance(text, str) and len(text) == 64 and _HEX.issuperset(text)
