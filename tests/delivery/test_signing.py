"""Standard Webhooks signatures against the specification's reference vector, and sealing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quanyu.delivery.signing import (
    SECRET_PREFIX,
    SecretBox,
    SecretUnreadable,
    SignatureInvalid,
    generate_secret,
    secret_key,
    sign,
    signed_headers,
    verify,
)
from quanyu.errors import ValidationFailed

# The reference vector of the standard-webhooks repository
# (libraries/python/tests/test_webhooks.py, test_sign_function).
REF_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REF_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
REF_TIMESTAMP = 1614265330
REF_BODY = '{"test": 2432232314}'
REF_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_sign_matches_the_reference_vector() -> None:
    assert sign(REF_SECRET, REF_ID, REF_TIMESTAMP, REF_BODY) == REF_SIGNATURE
    # the prefix is optional, as in the reference library
    assert sign(REF_SECRET.removeprefix("whsec_"), REF_ID, REF_TIMESTAMP, REF_BODY) == REF_SIGNATURE


def test_verify_accepts_the_reference_vector_at_its_time() -> None:
    headers = {
        "Webhook-Id": REF_ID,
        "Webhook-Timestamp": str(REF_TIMESTAMP),
        "Webhook-Signature": REF_SIGNATURE,
    }
    assert verify(REF_SECRET, headers, REF_BODY.encode(), now=REF_TIMESTAMP + 10) == REF_ID
    with pytest.raises(SignatureInvalid, match="beyond 300 s"):
        verify(REF_SECRET, headers, REF_BODY, now=REF_TIMESTAMP + 301)


@given(body=st.binary(max_size=300), msg_id=st.from_regex(r"msg_[a-z0-9]{1,20}", fullmatch=True))
def test_sign_equals_an_independent_hmac(body: bytes, msg_id: str) -> None:
    secret = generate_secret()
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    expected = hmac.new(key, f"{msg_id}.1700000000.".encode() + body, hashlib.sha256).digest()
    assert sign(secret, msg_id, 1700000000, body) == "v1," + base64.b64encode(expected).decode()


def test_generated_secrets_are_32_random_bytes() -> None:
    made = {generate_secret() for _ in range(50)}
    assert len(made) == 50
    for s in made:
        assert s.startswith("whsec_")
        assert len(secret_key(s)) == 32


def test_tampering_and_missing_headers_are_refused() -> None:
    secret = generate_secret()
    now = int(time.time())
    headers = signed_headers(secret, "msg_1", now, b'{"a":1}')
    assert verify(secret, headers, b'{"a":1}') == "msg_1"
    with pytest.raises(SignatureInvalid, match="matches"):
        verify(secret, headers, b'{"a":2}')
    with pytest.raises(SignatureInvalid, match="matches"):
        verify(generate_secret(), headers, b'{"a":1}')
    with pytest.raises(SignatureInvalid, match="matches"):
        verify(secret, {**headers, "webhook-id": "msg_2"}, b'{"a":1}')
    with pytest.raises(SignatureInvalid, match="lacks"):
        verify(secret, {k: v for k, v in headers.items() if k != "webhook-id"}, b'{"a":1}')
    with pytest.raises(SignatureInvalid, match="unix seconds"):
        verify(secret, {**headers, "webhook-timestamp": "soon"}, b'{"a":1}')
    with pytest.raises(SignatureInvalid, match="beyond"):
        verify(secret, headers, b'{"a":1}', now=now - 400)


def test_one_matching_signature_among_several_suffices() -> None:
    """During a secret rotation a sender signs with both; junk entries are ignored."""
    secret = generate_secret()
    now = int(time.time())
    good = sign(secret, "msg_1", now, "x")
    header = f"v2,abc v1,not-base64! v1,{base64.b64encode(b'0' * 32).decode()} {good}"
    hdrs = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": header}
    assert verify(secret, hdrs, "x") == "msg_1"


def test_a_secret_that_is_not_base64_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="not base64"):
        sign("whsec_%%%", "msg_1", 1, "x")
    with pytest.raises(ValidationFailed, match="empty"):
        sign("whsec_", "msg_1", 1, "x")


def test_sealed_secrets_open_only_for_their_tenant_destination_and_key() -> None:
    master = secrets.token_bytes(32)
    box = SecretBox(master)
    secret = generate_secret()
    sealed = box.seal("ten_a", "dst_1", secret)
    assert secret.encode() not in sealed
    assert SecretBox(master).open("ten_a", "dst_1", sealed) == secret
    for tenant, dest, key in [
        ("ten_b", "dst_1", master),
        ("ten_a", "dst_2", master),
        ("ten_a", "dst_1", secrets.token_bytes(32)),
    ]:
        with pytest.raises(SecretUnreadable, match="dst_"):
            SecretBox(key).open(tenant, dest, sealed)
