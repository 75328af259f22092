"""Signature verification, held to the providers' published vectors and their own signing code.

Stripe and Standard Webhooks signatures come from the ``stripe`` and ``standardwebhooks``
packages, and our signer's output is checked by their verifiers, so both directions are held to
an implementation other than ours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks
import stripe
from hypothesis import assume, example, given
from hypothesis import strategies as st

from gateway.errors import VerificationFailed
from gateway.verify import needs_secret, sign, verify
from tests.payloads import STRIPE_AS_HMAC, SW_AS_HMAC

NOW = 1_700_000_000
SECRET = "test-secret-not-real"
OLD_SECRET = "test-previous-secret-not-real"
OTHER_SECRET = "test-unrelated-secret"
BODY = b'{"id":"evt_test","object":"event","type":"charge.succeeded","data":{"amount":1}}'
OTHER_BODY = BODY.replace(b'"amount":1', b'"amount":2')

XTND = {"scheme": "hmac", "header": "ms-signature", "prefix": "sha256=", "encoding": "hex"}
XTND_SECRET = "secret123"
XTND_BODY = b"{'test':'test2'}"
XTND_SIGNATURE = "25FB6994568A75CD233E04BA1C653AF1BF476041CC543AF04F82CAAC482C201A"

XEMELGO = {"scheme": "hmac", "header": "xemelgo-signature", "prefix": "sha256="}
SHOPIFY = {"scheme": "hmac", "header": "X-Shopify-Hmac-Sha256", "encoding": "base64"}
GITHUB = {"scheme": "hmac", "header": "X-Hub-Signature-256", "prefix": "sha256="}
SHA512 = {"scheme": "hmac", "header": "x-signature", "algorithm": "sha512"}
ANY_ENCODING = {"scheme": "hmac", "header": "xilnex-webhook-signature", "encoding": "any"}
STRIPE = {"scheme": "stripe", "header": "Stripe-Signature", "tolerance_s": 300}
SW = {"scheme": "standard-webhooks"}
SVIX = {
    "scheme": "standard-webhooks",
    "id_header": "svix-id",
    "timestamp_header": "svix-timestamp",
    "signature_header": "svix-signature",
}
API_KEY = {"scheme": "api-key", "header": "x-api-key"}
BEARER = {"scheme": "api-key", "header": "Authorization", "prefix": "Bearer "}
HEADER_SECRET = {"scheme": "header-secret", "header": "xilnex-webhook-signature"}
XILNEX = {"scheme": "any-of", "schemes": [ANY_ENCODING, HEADER_SECRET], "unverified_secret": "-"}
KEY_OR_HMAC = {"scheme": "any-of", "schemes": [API_KEY, {"scheme": "hmac", "header": "x-sig"}]}
NONE = {"scheme": "none"}

SW_KEY = base64.b64encode(b"fake standard webhooks test key!").decode()
SW_SECRET = "whsec_" + SW_KEY
SW_OLD_SECRET = "whsec_" + base64.b64encode(b"fake previous test key").decode()


def mac(secret: str, body: bytes = BODY, algorithm: str = "sha256") -> bytes:
    """The expected HMAC, computed here rather than by the module under test."""
    return hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).digest()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def lower(headers: dict[str, str]) -> dict[str, str]:
    """Header names as the receiving layer hands them to ``verify``."""
    return {name.lower(): value for name, value in headers.items()}


def failure(
    spec: dict[str, Any],
    headers: dict[str, str],
    *,
    secrets: tuple[str, ...] = (SECRET,),
    body: bytes = BODY,
    now: float = NOW,
) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as info:
        verify(spec, list(secrets), lower(headers), body, now=now)
    return info.value


def stripe_header(secret: str = SECRET, body: bytes = BODY, timestamp: int = NOW) -> str:
    """A Stripe-Signature header made by the stripe package's own test-signing helper."""
    return stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=timestamp
    )


def sw_headers(
    secret: str = SW_SECRET, body: bytes = BODY, msg_id: str = "msg_test", timestamp: int = NOW
) -> dict[str, str]:
    """Standard Webhooks headers signed by the reference ``standardwebhooks`` package."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    signature = standardwebhooks.Webhook(secret).sign(msg_id, when, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


# --- hmac ----------------------------------------------------------------------------------


def test_xtnd_published_vector_passes() -> None:
    assert len(XTND_BODY) == 16
    headers = {"ms-signature": "sha256=" + XTND_SIGNATURE}
    verify(XTND, [XTND_SECRET], headers, XTND_BODY, now=NOW)


def test_xtnd_published_vector_in_lower_hex_passes() -> None:
    headers = {"ms-signature": "sha256=" + XTND_SIGNATURE.lower()}
    verify(XTND, [XTND_SECRET], headers, XTND_BODY, now=NOW)


def test_xtnd_published_vector_with_one_flipped_char_is_signature_mismatch() -> None:
    flipped = XTND_SIGNATURE[:10] + "0" + XTND_SIGNATURE[11:]
    assert flipped != XTND_SIGNATURE
    error = failure(
        XTND, {"ms-signature": "sha256=" + flipped}, secrets=(XTND_SECRET,), body=XTND_BODY
    )
    assert error.code == "signature_mismatch"


@pytest.mark.parametrize(
    ("spec", "headers", "secrets"),
    [
        # Xemelgo: lower hex behind sha256=
        (XEMELGO, {"xemelgo-signature": "sha256=" + mac(SECRET).hex()}, [SECRET]),
        # Shopify: bare base64, header named in the sender's case
        (SHOPIFY, {"X-Shopify-Hmac-Sha256": b64(mac(SECRET))}, [SECRET]),
        # GitHub: sha256=<hex>
        (GITHUB, {"X-Hub-Signature-256": "sha256=" + mac(SECRET).hex()}, [SECRET]),
        # the prefix is compared case-insensitively
        (GITHUB, {"X-Hub-Signature-256": "SHA256=" + mac(SECRET).hex()}, [SECRET]),
        # sha512 in hex
        (SHA512, {"x-signature": mac(SECRET, algorithm="sha512").hex()}, [SECRET]),
        # encoding "any": lower hex, upper hex and base64
        (ANY_ENCODING, {"xilnex-webhook-signature": mac(SECRET).hex()}, [SECRET]),
        (ANY_ENCODING, {"xilnex-webhook-signature": mac(SECRET).hex().upper()}, [SECRET]),
        (ANY_ENCODING, {"xilnex-webhook-signature": b64(mac(SECRET))}, [SECRET]),
        # encoding "any" with sha512 base64
        (
            {**ANY_ENCODING, "algorithm": "sha512"},
            {"xilnex-webhook-signature": b64(mac(SECRET, algorithm="sha512"))},
            [SECRET],
        ),
        # rotation: a delivery queued before the rotation still carries the previous secret
        (XEMELGO, {"xemelgo-signature": "sha256=" + mac(OLD_SECRET).hex()}, [SECRET, OLD_SECRET]),
    ],
)
def test_hmac_accepts(spec: dict[str, Any], headers: dict[str, str], secrets: list[str]) -> None:
    verify(spec, secrets, lower(headers), BODY, now=NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no header at all
        {"xemelgo-signature": ""},  # present but empty
        {"x-other-signature": "sha256=" + mac(SECRET).hex()},  # another sender's header
    ],
)
def test_hmac_signature_missing(headers: dict[str, str]) -> None:
    assert failure(XEMELGO, headers).code == "signature_missing"


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        (XEMELGO, mac(SECRET).hex()),  # the configured prefix is absent
        (XEMELGO, "sha1=" + mac(SECRET).hex()),  # another algorithm's prefix
        (XEMELGO, "sha256=" + "zz" * 32),  # not hex
        (XEMELGO, "sha256=" + mac(SECRET).hex()[:-2]),  # truncated digest
        (XEMELGO, "sha256=" + mac(SECRET).hex()[:-1]),  # odd number of hex digits
        (XEMELGO, "sha256=" + mac(SECRET).hex()[:32] + " " + mac(SECRET).hex()[32:]),
        ({**XEMELGO, "encoding": "base64"}, "sha256=" + mac(SECRET).hex()),  # hex, not base64
        ({**XEMELGO, "encoding": "base64"}, "sha256=" + b64(mac(SECRET))[:-2]),  # bad padding
        (SHA512, mac(SECRET).hex()),  # a sha256 digest where sha512 is expected
        ({**XEMELGO, "encoding": "any"}, "sha256=not a signature"),
    ],
)
def test_hmac_signature_malformed(spec: dict[str, Any], value: str) -> None:
    assert failure(spec, {spec["header"]: value}).code == "signature_malformed"


@pytest.mark.parametrize(
    ("headers", "secrets", "body"),
    [
        ({"xemelgo-signature": "sha256=" + mac(OTHER_SECRET).hex()}, (SECRET,), BODY),
        ({"xemelgo-signature": "sha256=" + mac(SECRET).hex()}, (SECRET,), OTHER_BODY),
        # the previous secret is only accepted while it is passed in
        ({"xemelgo-signature": "sha256=" + mac(OLD_SECRET).hex()}, (SECRET,), BODY),
    ],
)
def test_hmac_signature_mismatch(
    headers: dict[str, str], secrets: tuple[str, ...], body: bytes
) -> None:
    assert failure(XEMELGO, headers, secrets=secrets, body=body).code == "signature_mismatch"


# --- stripe --------------------------------------------------------------------------------


def _with_extra_v1(header: str) -> str:
    """Put a wrong v1 before the right one, as Stripe does while two secrets are active."""
    stamp, right = header.split(",")
    return f"{stamp},v1={'ab' * 32},{right}"


@pytest.mark.parametrize(
    ("header", "secrets", "now"),
    [
        (stripe_header(), [SECRET], NOW),
        # several v1 signatures, one of them right
        (_with_extra_v1(stripe_header()), [SECRET], NOW),
        # other schemes such as v0 are ignored
        (stripe_header() + ",v0=" + "cd" * 32, [SECRET], NOW),
        # rotation: the previous secret is still accepted when passed in
        (stripe_header(secret=OLD_SECRET), [SECRET, OLD_SECRET], NOW),
        # exactly at the tolerance, in either direction
        (stripe_header(), [SECRET], NOW + 300),
        (stripe_header(), [SECRET], NOW - 300),
    ],
)
def test_stripe_accepts(header: str, secrets: list[str], now: int) -> None:
    verify(STRIPE, secrets, {"stripe-signature": header}, BODY, now=now)


def test_stripe_scheme_defaults_to_the_stripe_header_and_tolerance() -> None:
    verify({"scheme": "stripe"}, [SECRET], {"stripe-signature": stripe_header()}, BODY, now=NOW)
    error = failure({"scheme": "stripe"}, {"Stripe-Signature": stripe_header()}, now=NOW + 301)
    assert error.code == "timestamp_out_of_tolerance"


@pytest.mark.parametrize(
    "now",
    [
        NOW + 301,  # the delivery is 301 s old
        NOW - 301,  # the delivery is 301 s in the future
    ],
)
def test_stripe_timestamp_out_of_tolerance(now: int) -> None:
    error = failure(STRIPE, {"Stripe-Signature": stripe_header()}, now=now)
    assert error.code == "timestamp_out_of_tolerance"


def test_stripe_timestamp_missing() -> None:
    without_t = stripe_header().split(",", 1)[1]
    assert failure(STRIPE, {"Stripe-Signature": without_t}).code == "timestamp_missing"


@pytest.mark.parametrize(
    "stamp",
    [
        "t=soon",  # not a number
        "t=1700000000.5",  # not whole seconds
        "t=-1700000000",  # signed
        f"t={NOW},t={NOW}",  # ambiguous
        "t=" + "9" * 4000,  # too large for a float
        "t=" + "9" * 5000,  # too long for int() as well
        "t=" + "0" * 13,  # more digits than any epoch second has
    ],
)
def test_stripe_timestamp_invalid(stamp: str) -> None:
    v1 = stripe_header().split(",")[1]
    assert failure(STRIPE, {"Stripe-Signature": f"{stamp},{v1}"}).code == "timestamp_invalid"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",  # no key=value pairs at all
        f"t={NOW},v1",  # a pair without '='
        f"t={NOW},v1=not-hex",
        f"t={NOW},v1={'ab' * 16}",  # too short for SHA-256
    ],
)
def test_stripe_signature_malformed(header: str) -> None:
    assert failure(STRIPE, {"Stripe-Signature": header}).code == "signature_malformed"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Stripe-Signature": f"t={NOW},v0={'cd' * 32}"},  # no v1 entry
    ],
)
def test_stripe_signature_missing(headers: dict[str, str]) -> None:
    assert failure(STRIPE, headers).code == "signature_missing"


@pytest.mark.parametrize(
    ("header", "secrets", "body"),
    [
        (stripe_header(secret=OTHER_SECRET), (SECRET,), BODY),
        (stripe_header(), (SECRET,), OTHER_BODY),
        (stripe_header(secret=OLD_SECRET), (SECRET,), BODY),
        # the timestamp is signed: moving it within tolerance breaks the signature
        (stripe_header().replace(f"t={NOW}", f"t={NOW + 1}"), (SECRET,), BODY),
    ],
)
def test_stripe_signature_mismatch(header: str, secrets: tuple[str, ...], body: bytes) -> None:
    error = failure(STRIPE, {"Stripe-Signature": header}, secrets=secrets, body=body)
    assert error.code == "signature_mismatch"


@pytest.mark.parametrize(
    "malformed",
    [
        "v1=abcd",  # two bytes
        "v1=",  # empty
        "v1=not-hex",
        f"v1={'ab' * 64}",  # too long for SHA-256
    ],
    ids=["short", "empty", "not-hex", "long"],
)
@pytest.mark.parametrize("valid_first", [False, True], ids=["malformed-first", "valid-first"])
def test_stripe_a_malformed_signature_beside_the_right_one_does_not_matter(
    malformed: str, valid_first: bool
) -> None:
    stamp, valid = stripe_header().split(",")
    entries = [valid, malformed] if valid_first else [malformed, valid]
    header = ",".join([stamp, *entries])
    assert stripe.WebhookSignature.verify_header(BODY, header, SECRET)  # as the reference reads it

    verify(STRIPE, [SECRET], {"stripe-signature": header}, BODY, now=NOW)


def test_stripe_package_accepts_our_signature() -> None:
    headers = sign(STRIPE, SECRET, BODY)
    assert list(headers) == ["Stripe-Signature"]
    event = stripe.Webhook.construct_event(BODY, headers["Stripe-Signature"], SECRET)
    assert event.id == "evt_test"
    assert stripe.WebhookSignature.verify_header(BODY, headers["Stripe-Signature"], SECRET, 300)


# --- standard webhooks ---------------------------------------------------------------------


def _with_signatures(headers: dict[str, str], signature: str) -> dict[str, str]:
    return {**headers, "webhook-signature": signature}


@pytest.mark.parametrize(
    ("spec", "headers", "secrets", "now"),
    [
        (SW, sw_headers(), [SW_SECRET], NOW),
        # the key without its whsec_ prefix, on either side
        (SW, sw_headers(secret=SW_KEY), [SW_SECRET], NOW),
        (SW, sw_headers(), [SW_KEY], NOW),
        # several space-separated signatures, one of them right; other versions ignored
        (
            SW,
            _with_signatures(
                sw_headers(),
                f"v1,{b64(b'x' * 32)} v1a,opaque  {sw_headers()['webhook-signature']}",
            ),
            [SW_SECRET],
            NOW,
        ),
        # rotation
        (SW, sw_headers(secret=SW_OLD_SECRET), [SW_SECRET, SW_OLD_SECRET], NOW),
        # exactly at the tolerance, in either direction
        (SW, sw_headers(), [SW_SECRET], NOW + 300),
        (SW, sw_headers(), [SW_SECRET], NOW - 300),
        # header names configured per sender (Svix's own names)
        (
            SVIX,
            {k.replace("webhook-", "svix-"): v for k, v in sw_headers().items()},
            [SW_SECRET],
            NOW,
        ),
    ],
)
def test_standard_webhooks_accepts(
    spec: dict[str, Any], headers: dict[str, str], secrets: list[str], now: int
) -> None:
    verify(spec, secrets, lower(headers), BODY, now=now)


@pytest.mark.parametrize(
    "now",
    [
        NOW + 301,  # the delivery is 301 s old
        NOW - 301,  # the delivery is 301 s in the future
    ],
)
def test_standard_webhooks_timestamp_out_of_tolerance(now: int) -> None:
    error = failure(SW, sw_headers(), secrets=(SW_SECRET,), now=now)
    assert error.code == "timestamp_out_of_tolerance"


def test_standard_webhooks_timestamp_missing() -> None:
    headers = sw_headers()
    del headers["webhook-timestamp"]
    assert failure(SW, headers, secrets=(SW_SECRET,)).code == "timestamp_missing"


@pytest.mark.parametrize(
    "stamp", ["soon", f"{NOW}.5", f"{NOW}e0", f"-{NOW}", "9" * 400, "\u0661" * 10]
)
def test_standard_webhooks_timestamp_invalid(stamp: str) -> None:
    headers = {**sw_headers(), "webhook-timestamp": stamp}
    assert failure(SW, headers, secrets=(SW_SECRET,)).code == "timestamp_invalid"


@pytest.mark.parametrize(
    "headers",
    [
        {k: v for k, v in sw_headers().items() if k != "webhook-signature"},
        _with_signatures(sw_headers(), "v2,abc"),  # no v1 entry
    ],
)
def test_standard_webhooks_signature_missing(headers: dict[str, str]) -> None:
    assert failure(SW, headers, secrets=(SW_SECRET,)).code == "signature_missing"


@pytest.mark.parametrize(
    "headers",
    [
        # the id is part of what is signed, so a signature without it cannot be checked
        {k: v for k, v in sw_headers().items() if k != "webhook-id"},
        _with_signatures(sw_headers(), "v1"),  # no comma
        _with_signatures(sw_headers(), "v1,not-base64!"),
        _with_signatures(sw_headers(), f"v1,{b64(b'short')}"),
    ],
)
def test_standard_webhooks_signature_malformed(headers: dict[str, str]) -> None:
    assert failure(SW, headers, secrets=(SW_SECRET,)).code == "signature_malformed"


@pytest.mark.parametrize(
    ("headers", "secrets", "body"),
    [
        (sw_headers(secret=SW_OLD_SECRET), (SW_SECRET,), BODY),
        (sw_headers(), (SW_SECRET,), OTHER_BODY),
        # id and timestamp are signed
        ({**sw_headers(), "webhook-id": "msg_other"}, (SW_SECRET,), BODY),
        ({**sw_headers(), "webhook-timestamp": str(NOW + 1)}, (SW_SECRET,), BODY),
    ],
)
def test_standard_webhooks_signature_mismatch(
    headers: dict[str, str], secrets: tuple[str, ...], body: bytes
) -> None:
    assert failure(SW, headers, secrets=secrets, body=body).code == "signature_mismatch"


@pytest.mark.parametrize("secret", ["whsec_not*base64", "whsec_"])
def test_standard_webhooks_unusable_secret_is_secret_missing(secret: str) -> None:
    assert failure(SW, sw_headers(), secrets=(secret,)).code == "secret_missing"


@pytest.mark.parametrize(
    "malformed",
    [
        "v1,AAAA",  # three bytes
        "v1,",  # empty
        "v1,!!!!",  # not base64
        f"v1,{b64(b'x' * 64)}",  # too long for SHA-256
    ],
    ids=["short", "empty", "not-base64", "long"],
)
@pytest.mark.parametrize("valid_first", [False, True], ids=["malformed-first", "valid-first"])
def test_standard_webhooks_a_malformed_signature_beside_the_right_one_does_not_matter(
    malformed: str, valid_first: bool
) -> None:
    now = int(time.time())  # the reference checks the timestamp against its own clock
    headers = sw_headers(timestamp=now)
    valid = headers["webhook-signature"]
    headers["webhook-signature"] = f"{valid} {malformed}" if valid_first else f"{malformed} {valid}"
    assert standardwebhooks.Webhook(SW_SECRET).verify(BODY, headers)  # as the reference reads it

    verify(SW, [SW_SECRET], lower(headers), BODY, now=now)


def test_standardwebhooks_package_accepts_our_signature() -> None:
    headers = sign(SW, SW_SECRET, BODY, message_id="msg_fixed")
    assert headers["webhook-id"] == "msg_fixed"
    assert standardwebhooks.Webhook(SW_SECRET).verify(BODY, headers) == {
        "id": "evt_test",
        "object": "event",
        "type": "charge.succeeded",
        "data": {"amount": 1},
    }


def test_standard_webhooks_sign_makes_a_message_id_when_none_is_given() -> None:
    first, second = sign(SW, SW_SECRET, BODY), sign(SW, SW_SECRET, BODY)
    assert first["webhook-id"].startswith("msg_")
    assert first["webhook-id"] != second["webhook-id"]
    standardwebhooks.Webhook(SW_KEY).verify(BODY, first)


# --- several signatures --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "headers", "secrets", "message"),
    [
        (
            STRIPE,
            {"Stripe-Signature": f"{stripe_header(secret=OTHER_SECRET)},v1=abcd"},
            (SECRET,),
            "none of the 2 signatures matches an accepted secret (1 of them malformed)",
        ),
        (
            SW,
            _with_signatures(sw_headers(), f"v1,AAAA v1,{b64(b'x' * 32)} v1,"),
            (SW_SECRET,),
            "none of the 3 signatures matches an accepted secret (2 of them malformed)",
        ),
        (
            SW,
            _with_signatures(sw_headers(), f"v1,{b64(b'x' * 32)} v1,{b64(b'y' * 32)}"),
            (SW_SECRET,),
            "none of the 2 signatures matches an accepted secret",
        ),
    ],
    ids=["stripe", "standard-webhooks-malformed", "standard-webhooks-wrong"],
)
def test_several_signatures_none_of_which_matches_is_a_mismatch_that_says_so(
    spec: dict[str, Any], headers: dict[str, str], secrets: tuple[str, ...], message: str
) -> None:
    error = failure(spec, headers, secrets=secrets)

    assert (error.code, error.message) == ("signature_mismatch", message)


# --- api-key and header-secret -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "headers", "secrets"),
    [
        (API_KEY, {"x-api-key": SECRET}, [SECRET]),
        (BEARER, {"Authorization": f"Bearer {SECRET}"}, [SECRET]),
        (BEARER, {"Authorization": f"bearer {SECRET}"}, [SECRET]),  # scheme names ignore case
        (API_KEY, {"x-api-key": OLD_SECRET}, [SECRET, OLD_SECRET]),  # rotation
    ],
)
def test_api_key_accepts(spec: dict[str, Any], headers: dict[str, str], secrets: list[str]) -> None:
    verify(spec, secrets, lower(headers), BODY, now=NOW)


@pytest.mark.parametrize(
    ("spec", "headers"),
    [
        (API_KEY, {}),
        (API_KEY, {"x-api-key": ""}),
        (BEARER, {}),
        (BEARER, {"Authorization": "Bearer "}),
    ],
)
def test_api_key_missing(spec: dict[str, Any], headers: dict[str, str]) -> None:
    assert failure(spec, headers).code == "api_key_missing"


@pytest.mark.parametrize(
    ("spec", "headers"),
    [
        (API_KEY, {"x-api-key": OTHER_SECRET}),
        (API_KEY, {"x-api-key": SECRET + "x"}),
        (API_KEY, {"x-api-key": SECRET[:-1]}),
        (API_KEY, {"x-api-key": OLD_SECRET}),  # the previous secret, no longer passed in
        (BEARER, {"Authorization": SECRET}),  # the prefix is required
        (BEARER, {"Authorization": f"Basic {SECRET}"}),
    ],
)
def test_api_key_invalid(spec: dict[str, Any], headers: dict[str, str]) -> None:
    assert failure(spec, headers).code == "api_key_invalid"


def test_header_secret_accepts_the_secret_itself() -> None:
    verify(HEADER_SECRET, [SECRET], {"xilnex-webhook-signature": SECRET}, BODY, now=NOW)


def test_header_secret_signature_missing() -> None:
    assert failure(HEADER_SECRET, {}).code == "signature_missing"


def test_header_secret_signature_mismatch() -> None:
    headers = {"xilnex-webhook-signature": OTHER_SECRET}
    assert failure(HEADER_SECRET, headers).code == "signature_mismatch"


# --- any-of, none, unverified_secret, secret_missing ---------------------------------------


@pytest.mark.parametrize(
    ("spec", "headers"),
    [
        (XILNEX, {"xilnex-webhook-signature": mac(SECRET).hex()}),
        (XILNEX, {"xilnex-webhook-signature": b64(mac(SECRET))}),
        (XILNEX, {"xilnex-webhook-signature": SECRET}),  # the second alternative
        (KEY_OR_HMAC, {"x-api-key": SECRET}),
        (KEY_OR_HMAC, {"x-sig": mac(SECRET).hex()}),
    ],
)
def test_any_of_accepts_when_one_alternative_does(
    spec: dict[str, Any], headers: dict[str, str]
) -> None:
    verify(spec, [SECRET], headers, BODY, now=NOW)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "signature_missing"),  # no alternative's header is present
        ({"x-api-key": OTHER_SECRET}, "api_key_invalid"),  # the first alternative's error
        ({"x-sig": mac(OTHER_SECRET).hex()}, "signature_mismatch"),  # the first present one
        ({"x-api-key": OTHER_SECRET, "x-sig": mac(OTHER_SECRET).hex()}, "api_key_invalid"),
        ({"x-sig": "not hex"}, "signature_malformed"),
    ],
)
def test_any_of_reports_the_first_alternative_whose_header_is_present(
    headers: dict[str, str], code: str
) -> None:
    assert failure(KEY_OR_HMAC, headers).code == code


def test_none_accepts_anything_without_a_secret() -> None:
    verify(NONE, [], {}, BODY, now=NOW)
    assert sign(NONE, SECRET, BODY) == {}
    assert not needs_secret(NONE)


@pytest.mark.parametrize("secrets", [["-"], ["-", SECRET]])
def test_unverified_secret_skips_verification(secrets: list[str]) -> None:
    verify(XILNEX, secrets, {}, BODY, now=NOW)
    verify(XILNEX, secrets, {"xilnex-webhook-signature": "anything"}, BODY, now=NOW)
    assert sign(XILNEX, "-", BODY) == {}


def test_unverified_secret_only_counts_as_the_current_secret() -> None:
    assert failure(XILNEX, {}, secrets=(SECRET, "-")).code == "signature_missing"


@pytest.mark.parametrize("spec", [XEMELGO, STRIPE, SW, API_KEY, HEADER_SECRET, XILNEX, KEY_OR_HMAC])
@pytest.mark.parametrize("secrets", [(), ("",)])
def test_secret_missing(spec: dict[str, Any], secrets: tuple[str, ...]) -> None:
    headers = {"xemelgo-signature": "sha256=" + mac(SECRET).hex(), "x-api-key": SECRET}
    assert failure(spec, headers, secrets=secrets).code == "secret_missing"


@pytest.mark.parametrize(
    ("spec", "needed"),
    [
        (XEMELGO, True),
        (STRIPE, True),
        (SW, True),
        (API_KEY, True),
        (HEADER_SECRET, True),
        (XILNEX, True),  # unverified_secret depends on the group's secret, not on the spec
        (NONE, False),
        ({"scheme": "any-of", "schemes": [XEMELGO, NONE]}, False),
    ],
)
def test_needs_secret(spec: dict[str, Any], needed: bool) -> None:
    assert needs_secret(spec) is needed


def test_any_of_with_a_keyless_alternative_accepts_without_a_secret() -> None:
    verify({"scheme": "any-of", "schemes": [XEMELGO, NONE]}, [], {}, BODY, now=NOW)


@pytest.mark.parametrize(
    "spec",
    [
        {"scheme": "rot13"},
        {},
        {**XEMELGO, "algorithm": "md5"},
        {**XEMELGO, "encoding": "base32"},
        {"scheme": "any-of", "schemes": [{"scheme": "rot13"}]},
    ],
)
def test_unknown_scheme_or_option_is_a_programming_error(spec: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        verify(spec, [SECRET], {"xemelgo-signature": "sha256=00"}, BODY, now=NOW)


def test_unknown_scheme_is_refused_by_sign_and_needs_secret() -> None:
    with pytest.raises(ValueError):
        sign({"scheme": "rot13"}, SECRET, BODY)
    with pytest.raises(ValueError):
        needs_secret({"scheme": "rot13"})


def test_now_defaults_to_the_clock_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    headers = {"stripe-signature": stripe_header()}
    monkeypatch.setattr(time, "time", lambda: NOW + 300)
    verify(STRIPE, [SECRET], headers, BODY)
    monkeypatch.setattr(time, "time", lambda: NOW + 301)
    with pytest.raises(VerificationFailed):
        verify(STRIPE, [SECRET], headers, BODY)


@pytest.mark.parametrize(
    ("spec", "secret", "body", "now", "expected"),
    [
        (XEMELGO, SECRET, BODY, NOW, {"xemelgo-signature": "sha256=" + mac(SECRET).hex()}),
        (SHOPIFY, SECRET, BODY, NOW, {"X-Shopify-Hmac-Sha256": b64(mac(SECRET))}),
        (XTND, XTND_SECRET, XTND_BODY, NOW, {"ms-signature": "sha256=" + XTND_SIGNATURE.lower()}),
        (STRIPE, SECRET, BODY, NOW, {"Stripe-Signature": stripe_header()}),
        (BEARER, SECRET, BODY, NOW, {"Authorization": f"Bearer {SECRET}"}),
        (XILNEX, SECRET, BODY, NOW, {"xilnex-webhook-signature": mac(SECRET).hex()}),
    ],
)
def test_sign_matches_what_the_sender_sends(
    spec: dict[str, Any], secret: str, body: bytes, now: int, expected: dict[str, str]
) -> None:
    assert sign(spec, secret, body, now=now) == expected


def test_sign_standard_webhooks_matches_the_reference_package() -> None:
    ours = sign(SW, SW_SECRET, BODY, now=NOW, message_id="msg_test")
    assert ours == sw_headers()


# --- hmac with a signed-content template: Stripe-like and Svix-like senders as data ---------


def sw_rotating_headers() -> dict[str, str]:
    """Headers signed by the reference package with two keys, as during a rotation."""
    old = sw_headers(secret=SW_OLD_SECRET)["webhook-signature"]
    headers = sw_headers()
    headers["webhook-signature"] = f"{old} {headers['webhook-signature']}"
    return headers


@pytest.mark.parametrize(
    ("spec", "headers", "secrets", "now"),
    [
        (STRIPE_AS_HMAC, {"stripe-signature": stripe_header()}, [SECRET], NOW),
        # the old secret still inside its rotation window
        (
            STRIPE_AS_HMAC,
            {"stripe-signature": stripe_header(OLD_SECRET)},
            [SECRET, OLD_SECRET],
            NOW,
        ),
        # other items (v0=) and several v1 items are skipped until one matches
        (
            STRIPE_AS_HMAC,
            {"stripe-signature": _with_extra_v1(stripe_header()) + ",v0=ab"},
            [SECRET],
            NOW,
        ),
        (STRIPE_AS_HMAC, {"stripe-signature": stripe_header()}, [SECRET], NOW + 300),
        (SW_AS_HMAC, sw_headers(), [SW_SECRET], NOW),
        (SW_AS_HMAC, sw_rotating_headers(), [SW_SECRET], NOW - 300),
        (SW_AS_HMAC, sw_headers(secret=SW_OLD_SECRET), [SW_SECRET, SW_OLD_SECRET], NOW),
    ],
    ids=["stripe", "stripe-rotated", "stripe-extra-items", "stripe-edge", "sw", "sw-two", "sw-old"],
)
def test_templated_hmac_accepts_what_the_reference_libraries_sign(
    spec: dict[str, Any], headers: dict[str, str], secrets: list[str], now: int
) -> None:
    verify(spec, secrets, lower(headers), BODY, now=now)


@pytest.mark.parametrize(
    ("spec", "headers", "now", "code"),
    [
        (
            STRIPE_AS_HMAC,
            {"stripe-signature": stripe_header()},
            NOW + 301,
            "timestamp_out_of_tolerance",
        ),
        (SW_AS_HMAC, sw_headers(), NOW - 301, "timestamp_out_of_tolerance"),
        (STRIPE_AS_HMAC, {"stripe-signature": "v1=" + "ab" * 32}, NOW, "timestamp_missing"),
        (STRIPE_AS_HMAC, {"stripe-signature": "t=1,t=2,v1=" + "ab" * 32}, NOW, "timestamp_invalid"),
        (STRIPE_AS_HMAC, {"stripe-signature": f"t={NOW}"}, NOW, "signature_missing"),
        (STRIPE_AS_HMAC, {}, NOW, "signature_missing"),
        (
            STRIPE_AS_HMAC,
            {"stripe-signature": stripe_header(OTHER_SECRET)},
            NOW,
            "signature_mismatch",
        ),
        (
            SW_AS_HMAC,
            {k: v for k, v in sw_headers().items() if k != "webhook-id"},
            NOW,
            "signature_malformed",
        ),
        (SW_AS_HMAC, {**sw_headers(), "webhook-id": "msg_other"}, NOW, "signature_mismatch"),
    ],
    ids=[
        "stripe-late",
        "sw-early",
        "no-timestamp",
        "two-timestamps",
        "no-signature-item",
        "no-header",
        "wrong-secret",
        "no-id-header",
        "id-changed",
    ],
)
def test_templated_hmac_refuses(
    spec: dict[str, Any], headers: dict[str, str], now: int, code: str
) -> None:
    secret = SW_SECRET if spec is SW_AS_HMAC else SECRET
    assert failure(spec, headers, secrets=(secret,), now=now).code == code


def test_templated_hmac_signature_is_accepted_by_the_stripe_package() -> None:
    header = sign(STRIPE_AS_HMAC, SECRET, BODY, now=time.time())["Stripe-Signature"]
    event = stripe.Webhook.construct_event(BODY.decode(), header, SECRET)
    assert event["id"] == "evt_test"


def test_templated_hmac_signature_is_accepted_by_the_standardwebhooks_package() -> None:
    headers = sign(SW_AS_HMAC, SW_SECRET, BODY, now=time.time(), message_id="msg_ours")
    assert headers["webhook-id"] == "msg_ours"
    assert standardwebhooks.Webhook(SW_SECRET).verify(BODY.decode(), headers)["id"] == "evt_test"


# --- no secret or expected signature in any message ----------------------------------------


@pytest.mark.parametrize(
    ("spec", "headers", "secret", "expected"),
    [
        (XEMELGO, {"xemelgo-signature": "sha256=" + "00" * 32}, SECRET, mac(SECRET)),
        (XEMELGO, {"xemelgo-signature": "sha256=zz"}, SECRET, mac(SECRET)),
        (SHOPIFY, {"x-shopify-hmac-sha256": b64(b"\0" * 32)}, SECRET, mac(SECRET)),
        (
            STRIPE,
            {"stripe-signature": stripe_header(secret=OTHER_SECRET)},
            SECRET,
            bytes.fromhex(stripe_header().split("v1=")[1]),
        ),
        (
            SW,
            {**sw_headers(), "webhook-signature": f"v1,{b64(b'x' * 32)}"},
            SW_SECRET,
            base64.b64decode(sw_headers()["webhook-signature"][3:]),
        ),
        (SW, sw_headers(), "whsec_not*base64", b""),
        (API_KEY, {"x-api-key": SECRET[:-1]}, SECRET, SECRET.encode()),
        (BEARER, {"authorization": f"Basic {SECRET}"}, SECRET, SECRET.encode()),
        (HEADER_SECRET, {"xilnex-webhook-signature": "wrong"}, SECRET, SECRET.encode()),
    ],
)
def test_no_message_contains_the_secret_or_the_expected_signature(
    spec: dict[str, Any], headers: dict[str, str], secret: str, expected: bytes
) -> None:
    error = failure(spec, headers, secrets=(secret,))
    chain = [error, error.__cause__, error.__context__]
    text = " ".join(str(e) for e in chain if e is not None) + str(error.body())
    forbidden = {secret, secret.removeprefix("whsec_")}
    if expected:
        forbidden |= {expected.hex(), expected.hex().upper(), b64(expected)}
    assert not [value for value in forbidden if value in text]


# --- properties ----------------------------------------------------------------------------

#: Secrets as admins paste them: printable text (control characters are not key material).
text_secrets = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=40
)
#: Standard Webhooks keys: random bytes, with or without the whsec_ prefix.
sw_secrets = st.builds(
    lambda key, prefix: prefix + b64(key),
    st.binary(min_size=1, max_size=40).filter(lambda key: not key.endswith(b"\0")),
    st.sampled_from(["whsec_", ""]),
)

#: Every scheme, paired with the kind of secret it takes and whether it signs the body.
PROPERTY_SPECS = [
    pytest.param(XTND, text_secrets, True, id="hmac-hex-prefix"),
    pytest.param({**SHOPIFY, "algorithm": "sha512"}, text_secrets, True, id="hmac-sha512-base64"),
    pytest.param(ANY_ENCODING, text_secrets, True, id="hmac-any"),
    pytest.param(STRIPE, text_secrets, True, id="stripe"),
    pytest.param(SW, sw_secrets, True, id="standard-webhooks"),
    pytest.param(SVIX, sw_secrets, True, id="standard-webhooks-svix-names"),
    pytest.param(BEARER, text_secrets, False, id="api-key"),
    pytest.param(HEADER_SECRET, text_secrets, False, id="header-secret"),
    pytest.param(KEY_OR_HMAC, text_secrets, False, id="any-of"),
]


@pytest.mark.parametrize(("spec", "secrets_strategy", "signs_body"), PROPERTY_SPECS)
@given(data=st.data(), body=st.binary(max_size=256), other_body=st.binary(max_size=256))
def test_property_what_sign_produces_verify_accepts_and_nothing_else(
    spec: dict[str, Any],
    secrets_strategy: st.SearchStrategy[str],
    signs_body: bool,
    data: st.DataObject,
    body: bytes,
    other_body: bytes,
) -> None:
    secret = data.draw(secrets_strategy, label="secret")
    other_secret = data.draw(secrets_strategy, label="other_secret")
    headers = lower(sign(spec, secret, body, now=NOW))
    verify(spec, [secret], headers, body, now=NOW)
    if signs_body and other_body != body:
        with pytest.raises(VerificationFailed):
            verify(spec, [secret], headers, other_body, now=NOW)
    assume(other_secret != secret and other_secret.removeprefix("whsec_") != secret)
    assume(secret.removeprefix("whsec_") != other_secret)
    with pytest.raises(VerificationFailed):
        verify(spec, [other_secret], headers, body, now=NOW)


@given(secret=text_secrets, body=st.binary(max_size=256))
def test_property_none_accepts_any_body_unsigned(secret: str, body: bytes) -> None:
    verify(NONE, [secret], lower(sign(NONE, secret, body)), body, now=NOW)


def test_signing_writes_hex_in_the_senders_case() -> None:
    """XTND writes upper-case hex: `gateway send` reproduces its published vector exactly."""
    spec = {"scheme": "hmac", "header": "ms-signature", "prefix": "sha256=", "hex_case": "upper"}

    headers = sign(spec, "secret123", b"{'test':'test2'}")

    assert headers == {
        "ms-signature": "sha256=25FB6994568A75CD233E04BA1C653AF1BF476041CC543AF04F82CAAC482C201A"
    }


# --- the header parsers under arbitrary input --------------------------------------------------

#: Header text as a WSGI server hands it over (Latin-1), and beyond it (no lone surrogates).
header_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)
digits = st.text(st.sampled_from("0123456789"), min_size=1, max_size=4500)
#: Pieces the parsers split on and look for, so that drawn values reach past their first check.
header_pieces = st.one_of(
    header_text,
    digits,
    st.sampled_from(["t=", "v1=", "v1,", ",", " ", "=", "sha256=", "Bearer ", "whsec_"]),
    st.binary(min_size=0, max_size=64).map(lambda raw: raw.hex()),
    st.binary(min_size=0, max_size=64).map(b64),
)
header_values = st.lists(header_pieces, max_size=8).map("".join)

#: Every scheme's parser, with every header name it reads.
FUZZED_SPECS = [
    pytest.param(XTND, id="hmac-hex-prefix"),
    pytest.param({**SHOPIFY, "algorithm": "sha512"}, id="hmac-sha512-base64"),
    pytest.param(ANY_ENCODING, id="hmac-any"),
    pytest.param(STRIPE, id="stripe"),
    pytest.param(SW, id="standard-webhooks"),
    pytest.param(SVIX, id="standard-webhooks-svix-names"),
    pytest.param(BEARER, id="api-key"),
    pytest.param(HEADER_SECRET, id="header-secret"),
    pytest.param(XILNEX, id="any-of"),
]
FUZZED_HEADERS = [
    "ms-signature",
    "x-shopify-hmac-sha256",
    "xilnex-webhook-signature",
    "stripe-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "authorization",
]


@pytest.mark.parametrize("spec", FUZZED_SPECS)
@given(headers=st.dictionaries(st.sampled_from(FUZZED_HEADERS), header_values))
@example(headers={"stripe-signature": f"t={'9' * 4000},v1={'ab' * 32}"})
@example(headers={"webhook-id": "msg", "webhook-timestamp": "9" * 400, "webhook-signature": "v1,"})
def test_property_any_header_value_is_accepted_or_refused_never_an_error(
    spec: dict[str, Any], headers: dict[str, str]
) -> None:
    keyed = spec["scheme"] == "standard-webhooks"
    secrets = [SW_SECRET, SW_OLD_SECRET] if keyed else [SECRET, OLD_SECRET]
    try:
        verify(spec, secrets, headers, BODY, NOW)
    except VerificationFailed as error:
        assert error.status == 401
