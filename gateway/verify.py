"""Check that a delivery really comes from its sender, and sign sample deliveries the same way.

Pure: no Flask, no database, no I/O. A connector profile's ``verification`` object (the *spec*)
names a scheme; each scheme has a checker and a signer in one table so the two can never drift.
Every comparison goes through :func:`hmac.compare_digest` on bytes, and no error message ever
contains a secret or the signature we expected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from secrets import token_hex
from typing import Any

from gateway.errors import VerificationFailed

#: Tolerance for timestamped schemes when the spec does not give one (Stripe's and Svix's).
DEFAULT_TOLERANCE_S = 300

_ALGORITHMS: Mapping[str, Callable[..., Any]] = {
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}
_ENCODINGS = ("hex", "base64", "any")
_HEX = re.compile(r"[0-9a-fA-F]+")
#: A placeholder in an hmac scheme's ``signed_content`` or ``format``: ``{timestamp}``.
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
#: Whole epoch seconds: twelve digits reach past the year 30000, and a longer number cannot be
#: a timestamp (nor be turned into a float, nor, past 4,300 digits, even into an int).
_EPOCH = re.compile(r"[0-9]{1,12}")
#: Codes meaning "this scheme's header is not there", which any-of reads as "not this scheme".
_ABSENT = frozenset({"signature_missing", "api_key_missing"})
#: Standard Webhooks header names, per the specification.
_SW_HEADERS = {
    "id_header": "webhook-id",
    "timestamp_header": "webhook-timestamp",
    "signature_header": "webhook-signature",
}


@dataclass(frozen=True)
class _Delivery:
    """What a checker looks at: the request as received and the secrets it may be signed with."""

    headers: Mapping[str, str]
    body: bytes
    now: float
    #: The group's accepted secrets, current first; empty ones dropped.
    secrets: tuple[str, ...]
    #: The group's current secret as configured, compared with the spec's ``unverified_secret``.
    current: str | None
    #: The query parameters of the callback URL, where some senders put an API key.
    query: Mapping[str, str]


@dataclass(frozen=True)
class _Outgoing:
    """What a signer needs besides the spec and the secret."""

    body: bytes
    now: float
    message_id: str | None


@dataclass(frozen=True)
class _Scheme:
    """How one scheme checks a delivery, and how a sender signs one so that the check passes."""

    check: Callable[[Mapping[str, Any], _Delivery], None]
    sign: Callable[[Mapping[str, Any], str, _Outgoing], dict[str, str]]


def verify(
    spec: Mapping[str, Any],
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    query: Mapping[str, str] | None = None,
) -> None:
    """Raise :class:`VerificationFailed` unless ``body`` was signed as ``spec`` says.

    ``headers`` must have lower-cased names; ``secrets`` lists the current secret first, then any
    previous one still inside its rotation window, and any one of them may match.
    """
    delivery = _Delivery(
        headers=headers,
        body=body,
        now=time.time() if now is None else now,
        secrets=tuple(secret for secret in secrets if secret),
        current=secrets[0] if secrets else None,
        query=query or {},
    )
    _check(spec, delivery)


#: Where an API key is, in an ``api-key`` spec: what a group's own location replaces.
API_KEY_LOCATION = ("header", "query", "prefix")


def with_api_key(spec: Mapping[str, Any], location: Mapping[str, str] | None) -> Mapping[str, Any]:
    """``spec`` with an API key looked for where ``location`` says, when it is an API-key spec.

    Lets one group's sender put its key in ``Authorization: Bearer <key>``, an ``api-key:``
    header or a ``?key=`` parameter while the connector's other senders keep its own place.
    """
    if not location or spec.get("scheme") != "api-key":
        return spec
    kept = {key: value for key, value in spec.items() if key not in API_KEY_LOCATION}
    return {**kept, **location}


def sign(
    spec: Mapping[str, Any],
    secret: str,
    body: bytes,
    *,
    now: float | None = None,
    message_id: str | None = None,
) -> dict[str, str]:
    """Return the headers a real sender would add to ``body``, named as the sender spells them.

    Lets the CLI send signed sample payloads that the gateway accepts, as ``stripe trigger`` does.
    """
    if secret == spec.get("unverified_secret"):
        return {}
    outgoing = _Outgoing(body=body, now=time.time() if now is None else now, message_id=message_id)
    return _scheme(spec).sign(spec, secret, outgoing)


def needs_secret(spec: Mapping[str, Any]) -> bool:
    """Whether the scheme can only accept a delivery when the group has a secret.

    False for ``none``, and for an ``any-of`` with at least one alternative that needs none.
    """
    _scheme(spec)
    name: str = spec["scheme"]
    if name == "any-of":
        return all(needs_secret(sub) for sub in spec["schemes"])
    return name != "none"


def secret_problem(spec: Mapping[str, Any], secret: str) -> str | None:
    """Why no delivery could ever be verified with ``secret`` under ``spec``; None if one could.

    Lets a group refuse, when it is given, a secret that would only answer every delivery 401.
    Under ``any-of``, a secret one alternative can use is enough.
    """
    _scheme(spec)
    name: str = spec["scheme"]
    if secret == spec.get("unverified_secret"):
        return None
    if name == "any-of":
        problems = [secret_problem(sub, secret) for sub in spec["schemes"]]
        return None if None in problems else problems[0]
    if name == "standard-webhooks" or spec.get("key_encoding") == "base64":
        try:
            _sw_key(secret)
        except VerificationFailed:
            return "not a Standard Webhooks key: base64 of at least one byte, whsec_ optional"
    return None


def _check(spec: Mapping[str, Any], delivery: _Delivery) -> None:
    """Apply the admin's "no verification" switch and the secret requirement, then the scheme."""
    scheme = _scheme(spec)
    if "unverified_secret" in spec and delivery.current == spec["unverified_secret"]:
        return
    if needs_secret(spec) and not delivery.secrets:
        raise VerificationFailed(
            "this scheme needs a secret and the group has none", code="secret_missing"
        )
    scheme.check(spec, delivery)


def _scheme(spec: Mapping[str, Any]) -> _Scheme:
    """Look up the spec's scheme; an unknown one is a programming error (profiles are validated)."""
    try:
        return _SCHEMES[spec.get("scheme")]
    except KeyError:
        raise ValueError(f"unknown verification scheme {spec.get('scheme')!r}") from None


def _option(spec: Mapping[str, Any], key: str, allowed: Iterable[str], default: str) -> str:
    """Read an enumerated option, refusing values the profile schema should have refused."""
    value: str = spec.get(key, default)
    if value not in allowed:
        raise ValueError(f"unknown verification {key} {value!r}")
    return value


# --- shared steps -------------------------------------------------------------------------


def _header(delivery: _Delivery, name: str) -> str | None:
    """A header's value, or None when it is absent or empty (names arrive lower-cased)."""
    return delivery.headers.get(name.lower()) or None


def _strip_prefix(value: str, prefix: str) -> str | None:
    """``value`` without ``prefix`` (matched case-insensitively), or None when it lacks it."""
    if value[: len(prefix)].lower() != prefix.lower():
        return None
    return value[len(prefix) :]


def _mac(key: bytes, content: bytes, algorithm: str = "sha256") -> bytes:
    """The HMAC every signing scheme here uses, over exactly the bytes given."""
    return hmac.new(key, content, _ALGORITHMS[algorithm]).digest()


def _matches(expected: Iterable[bytes], received: Sequence[bytes]) -> bool:
    """Whether any received value equals any expected one, each comparison constant-time."""
    return any(hmac.compare_digest(e, r) for e in expected for r in received)


def _require_match(expected: Iterable[bytes], received: Sequence[bytes], code: str) -> None:
    if not _matches(expected, received):
        raise VerificationFailed("no accepted secret matches what was sent", code=code)


def _decode_digest(text: str, encoding: str, size: int) -> bytes:
    """Decode a received signature; ``any`` means hex (either case) or base64.

    A digest of 32 or 64 bytes always needs base64 padding, so "only hex digits" is unambiguous.
    """
    if encoding == "any":
        encoding = "hex" if _HEX.fullmatch(text) else "base64"
    try:
        if encoding == "hex":
            raw = binascii.unhexlify(text)
        else:
            raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise VerificationFailed(
            f"the signature is not valid {encoding}", code="signature_malformed"
        ) from exc
    if len(raw) != size:
        raise VerificationFailed(
            f"the signature is {len(raw)} bytes, expected {size}", code="signature_malformed"
        )
    return raw


def _require_one_match(
    expected: Iterable[bytes], signatures: Sequence[str], encoding: str, size: int
) -> None:
    """Pass when one of the signatures (``size`` bytes each) is an expected digest.

    Senders list one signature per active secret; a malformed one among them is one that does
    not match, as the reference libraries read it. Only a lone signature's fault is reported.
    """
    if not signatures:
        raise VerificationFailed(
            "the signature header has no signature of a known version", code="signature_missing"
        )
    if len(signatures) == 1:
        received = [_decode_digest(signatures[0], encoding, size)]
        _require_match(expected, received, "signature_mismatch")
        return
    digests = [d for d in (_digest_or_none(s, encoding, size) for s in signatures) if d is not None]
    if not _matches(expected, digests):
        malformed = len(signatures) - len(digests)
        raise VerificationFailed(
            f"none of the {len(signatures)} signatures matches an accepted secret"
            + (f" ({malformed} of them malformed)" if malformed else ""),
            code="signature_mismatch",
        )


def _digest_or_none(text: str, encoding: str, size: int) -> bytes | None:
    """A received signature decoded, or None when it is malformed."""
    try:
        return _decode_digest(text, encoding, size)
    except VerificationFailed:
        return None


def _check_timestamp(text: str | None, spec: Mapping[str, Any], now: float) -> None:
    """Refuse replays and clock-skewed deliveries: the timestamp must be within tolerance."""
    if text is None:
        raise VerificationFailed("the delivery carries no timestamp", code="timestamp_missing")
    if not _EPOCH.fullmatch(text):
        raise VerificationFailed(
            "the timestamp is not whole epoch seconds", code="timestamp_invalid"
        )
    tolerance = spec.get("tolerance_s", DEFAULT_TOLERANCE_S)
    skew = int(text) - now
    if abs(skew) > tolerance:
        direction = "ahead of" if skew > 0 else "behind"
        raise VerificationFailed(
            f"the timestamp is {abs(skew):.0f} s {direction} our clock; tolerance is {tolerance} s",
            code="timestamp_out_of_tolerance",
        )


# --- hmac: a MAC of the raw body (Xemelgo, XTND, Xilnex, GitHub, Shopify) or of a template -----


def _hmac_check(spec: Mapping[str, Any], delivery: _Delivery) -> None:
    """A signature of the signed content, optionally behind a prefix such as ``sha256=`` and
    within a structured header (``format``); the content is the raw body unless templated."""
    algorithm = _option(spec, "algorithm", _ALGORITHMS, "sha256")
    encoding = _option(spec, "encoding", _ENCODINGS, "hex")
    value = _header(delivery, spec["header"])
    if value is None:
        raise VerificationFailed(f"no {spec['header']} header", code="signature_missing")
    if "prefix" in spec:
        value = _strip_prefix(value, spec["prefix"])
        if value is None:
            raise VerificationFailed(
                f"the signature does not start with {spec['prefix']!r}", code="signature_malformed"
            )
    size = _ALGORITHMS[algorithm]().digest_size
    if "format" not in spec and "signed_content" not in spec:
        received = _decode_digest(value, encoding, size)
        expected = (_mac(_hmac_key(spec, s), delivery.body, algorithm) for s in delivery.secrets)
        _require_match(expected, [received], "signature_mismatch")
        return
    signatures, parts = _formatted_parts(spec, value)
    parts.update(_header_parts(spec, delivery))
    if "timestamp" in PLACEHOLDER.findall(spec.get("signed_content", "")):
        _check_timestamp(parts.get("timestamp"), spec, delivery.now)
    content = _signed_content(spec, parts, delivery.body)
    expected = (_mac(_hmac_key(spec, s), content, algorithm) for s in delivery.secrets)
    _require_one_match(expected, signatures, encoding, size)


def _hmac_sign(spec: Mapping[str, Any], secret: str, outgoing: _Outgoing) -> dict[str, str]:
    """Hex in the sender's case unless the spec asks for base64 (``any`` accepts hex); the parts
    of a templated content are the time now and the message id (a fresh one unless given)."""
    algorithm = _option(spec, "algorithm", _ALGORITHMS, "sha256")
    parts = {"timestamp": str(int(outgoing.now)), "id": outgoing.message_id or token_hex(12)}
    content = _signed_content(spec, parts, outgoing.body)
    digest = _mac(_hmac_key(spec, secret), content, algorithm)
    if _option(spec, "encoding", _ENCODINGS, "hex") == "base64":
        text = base64.b64encode(digest).decode()
    else:
        text = digest.hex().upper() if spec.get("hex_case") == "upper" else digest.hex()
    if "format" in spec:
        text = PLACEHOLDER.sub(
            lambda m: text if m[1] == "signature" else parts[m[1]], spec["format"]
        )
    headers = {header: parts[name] for name, header in spec.get("parts", {}).items()}
    return {**headers, spec["header"]: spec.get("prefix", "") + text}


def _hmac_key(spec: Mapping[str, Any], secret: str) -> bytes:
    """The secret's UTF-8, or the key it encodes in base64 (after an optional ``whsec_``)."""
    return _sw_key(secret) if spec.get("key_encoding") == "base64" else secret.encode()


def _format_items(spec: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The signature header's items as ``(before, placeholder, after)``: ``t={timestamp}`` is
    ``("t=", "timestamp", "")``. Profiles are validated: each item has one placeholder."""
    fmt: str = spec["format"]
    separator = spec.get("separator")
    items = fmt.split(separator) if separator else [fmt]
    parsed = []
    for item in items:
        before, name, after = PLACEHOLDER.split(item.strip(), maxsplit=1)
        parsed.append((before, name, after))
    return parsed


def _formatted_parts(spec: Mapping[str, Any], value: str) -> tuple[list[str], dict[str, str]]:
    """The signatures and the other parts a structured signature header carries.

    Items of no known form are skipped, as a sender may list other signature versions (``v0=``);
    every part but the signature must appear once, since the signature covers one value.
    """
    if "format" not in spec:
        return [value], {}
    separator = spec.get("separator")
    received = value.split(separator.strip() or None) if separator else [value]
    found: dict[str, list[str]] = {}
    for item in (i.strip() for i in received):
        for before, name, after in _format_items(spec):
            if item.startswith(before) and item.endswith(after) and len(item) > len(before + after):
                found.setdefault(name, []).append(item[len(before) : len(item) - len(after)])
                break
    parts = {}
    for name, values in found.items():
        if name != "signature" and len(values) > 1:
            code = "timestamp_invalid" if name == "timestamp" else "signature_malformed"
            raise VerificationFailed(f"the signature header has several {name} values", code=code)
        parts[name] = values[0]
    return found.get("signature", []), parts


def _header_parts(spec: Mapping[str, Any], delivery: _Delivery) -> dict[str, str]:
    """The parts of the signed content read from headers of their own; all of them must be there,
    except the timestamp, whose absence :func:`_check_timestamp` reports."""
    parts = {}
    for name, header in spec.get("parts", {}).items():
        value = _header(delivery, header)
        if value is None and name != "timestamp":
            raise VerificationFailed(
                f"no {header} header, which the signature covers", code="signature_malformed"
            )
        if value is not None:
            parts[name] = value
    return parts


def _signed_content(spec: Mapping[str, Any], parts: Mapping[str, str], body: bytes) -> bytes:
    """The template filled in: ``{body}`` is the raw body, each other placeholder its part."""
    template: str = spec.get("signed_content", "{body}")
    pieces = PLACEHOLDER.split(template)
    content = bytearray()
    for index, piece in enumerate(pieces):
        if index % 2 == 0:
            content += piece.encode()
        elif piece == "body":
            content += body
        elif piece in parts:
            content += parts[piece].encode()
        else:
            raise VerificationFailed(
                f"the delivery does not carry the {piece} the signature covers",
                code="signature_malformed",
            )
    return bytes(content)


# --- stripe: t=<epoch>,v1=<hex>[,v1=<hex>...] over "{t}.{body}" -------------------------------


def _stripe_header(spec: Mapping[str, Any]) -> str:
    """Stripe's header name unless the profile renames it."""
    header: str = spec.get("header", "Stripe-Signature")
    return header


def _stripe_fields(value: str) -> dict[str, list[str]]:
    """Split ``k=v,k=v`` into lists per key, since ``v1`` repeats while secrets roll over."""
    fields: dict[str, list[str]] = {}
    for item in value.split(","):
        key, sep, field = item.strip().partition("=")
        if not sep:
            raise VerificationFailed(
                "the signature header is not a list of key=value pairs",
                code="signature_malformed",
            )
        fields.setdefault(key, []).append(field)
    return fields


def _stripe_check(spec: Mapping[str, Any], delivery: _Delivery) -> None:
    """Several v1 entries may be present (Stripe signs with every active secret); one must match."""
    value = _header(delivery, _stripe_header(spec))
    if value is None:
        raise VerificationFailed(f"no {_stripe_header(spec)} header", code="signature_missing")
    fields = _stripe_fields(value)
    stamps = fields.get("t", [])
    if len(stamps) > 1:
        raise VerificationFailed(
            "the signature header has several t= values", code="timestamp_invalid"
        )
    _check_timestamp(stamps[0] if stamps else None, spec, delivery.now)
    content = f"{stamps[0]}.".encode() + delivery.body
    expected = (_mac(s.encode(), content) for s in delivery.secrets)
    _require_one_match(expected, fields.get("v1", []), "hex", 32)


def _stripe_sign(spec: Mapping[str, Any], secret: str, outgoing: _Outgoing) -> dict[str, str]:
    stamp = int(outgoing.now)
    digest = _mac(secret.encode(), f"{stamp}.".encode() + outgoing.body)
    return {_stripe_header(spec): f"t={stamp},v1={digest.hex()}"}


# --- standard-webhooks: "v1,<base64>" entries over "{id}.{timestamp}.{body}" -------------------


def _sw_names(spec: Mapping[str, Any]) -> dict[str, str]:
    """The three header names, each overridable because some senders prefix them (``svix-``)."""
    return {key: spec.get(key, default) for key, default in _SW_HEADERS.items()}


def _sw_key(secret: str) -> bytes:
    """The HMAC key is the base64 after an optional ``whsec_``; padding may have been dropped."""
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError as exc:
        raise VerificationFailed(
            "the group's secret is not a Standard Webhooks key (base64, optionally whsec_)",
            code="secret_missing",
        ) from exc
    if not key:
        raise VerificationFailed(
            "the group's secret decodes to an empty key", code="secret_missing"
        )
    return key


def _sw_v1_entries(value: str) -> list[str]:
    """The v1 signatures among space-separated ``<version>,<signature>`` entries."""
    signatures = []
    for entry in value.split():
        version, sep, signature = entry.partition(",")
        if not sep:
            raise VerificationFailed(
                "a signature entry is not <version>,<signature>", code="signature_malformed"
            )
        if version == "v1":
            signatures.append(signature)
    return signatures


def _sw_check(spec: Mapping[str, Any], delivery: _Delivery) -> None:
    """The id and timestamp are signed with the body, so both must be present to check anything."""
    names = _sw_names(spec)
    value = _header(delivery, names["signature_header"])
    if value is None:
        raise VerificationFailed(f"no {names['signature_header']} header", code="signature_missing")
    message_id = _header(delivery, names["id_header"])
    if message_id is None:
        raise VerificationFailed(
            f"no {names['id_header']} header, which the signature covers",
            code="signature_malformed",
        )
    stamp = _header(delivery, names["timestamp_header"])
    _check_timestamp(stamp, spec, delivery.now)
    content = f"{message_id}.{stamp}.".encode() + delivery.body
    expected = (_mac(_sw_key(s), content) for s in delivery.secrets)
    _require_one_match(expected, _sw_v1_entries(value), "base64", 32)


def _sw_sign(spec: Mapping[str, Any], secret: str, outgoing: _Outgoing) -> dict[str, str]:
    names = _sw_names(spec)
    message_id = outgoing.message_id or f"msg_{token_hex(12)}"
    stamp = str(int(outgoing.now))
    digest = _mac(_sw_key(secret), f"{message_id}.{stamp}.".encode() + outgoing.body)
    return {
        names["id_header"]: message_id,
        names["timestamp_header"]: stamp,
        names["signature_header"]: "v1," + base64.b64encode(digest).decode(),
    }


# --- api-key and header-secret: the header carries the secret itself ---------------------------


def _shared_secret_check(
    missing: str, invalid: str
) -> Callable[[Mapping[str, Any], _Delivery], None]:
    """Build a checker comparing the header (after an optional prefix) with the group's secrets."""

    def check(spec: Mapping[str, Any], delivery: _Delivery) -> None:
        where = _key_place(spec)
        if "query" in spec:
            value = delivery.query.get(spec["query"]) or None
        else:
            value = _header(delivery, spec["header"])
        if value is not None and "prefix" in spec:
            value = _strip_prefix(value, spec["prefix"])
            if value is None:
                raise VerificationFailed(
                    f"{where} does not start with {spec['prefix']!r}", code=invalid
                )
        if not value:
            raise VerificationFailed(f"no {where}", code=missing)
        expected = (s.encode() for s in delivery.secrets)
        _require_match(expected, [_sent_bytes(value)], invalid)

    return check


def _key_place(spec: Mapping[str, Any]) -> str:
    """Where a key is looked for, as messages name it."""
    if "query" in spec:
        return f"{spec['query']} query parameter"
    return f"{spec['header']} header"


def _shared_secret_sign(
    spec: Mapping[str, Any], secret: str, outgoing: _Outgoing
) -> dict[str, str]:
    """The header a sender adds; a key in a query parameter belongs to the URL, not here."""
    if "query" in spec:
        return {}
    # as a WSGI server would pass on the UTF-8 a sender sends: its bytes, one character each
    return {spec["header"]: (spec.get("prefix", "") + secret).encode().decode("latin-1")}


def _sent_bytes(value: str) -> bytes:
    """A header's bytes as sent: WSGI servers hand them over decoded as Latin-1 (PEP 3333), so a
    secret of any text, sent as UTF-8, compares equal to the secret's own UTF-8."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # not from a WSGI server: text already
        return value.encode()


# --- any-of and none ---------------------------------------------------------------------------


def _any_of_check(spec: Mapping[str, Any], delivery: _Delivery) -> None:
    """Accept if one alternative does; else report the first one whose header was present."""
    errors = []
    for sub in spec["schemes"]:
        try:
            _check(sub, delivery)
        except VerificationFailed as exc:
            errors.append(exc)
        else:
            return
    for error in errors:
        if error.code not in _ABSENT:
            raise error
    raise VerificationFailed(
        "none of the accepted signature headers is present", code="signature_missing"
    )


def _any_of_sign(spec: Mapping[str, Any], secret: str, outgoing: _Outgoing) -> dict[str, str]:
    """A sender uses one scheme; the first alternative is the preferred one."""
    first = spec["schemes"][0]
    return sign(first, secret, outgoing.body, now=outgoing.now, message_id=outgoing.message_id)


def _none_check(spec: Mapping[str, Any], delivery: _Delivery) -> None:
    """The profile accepts unsigned deliveries."""


def _none_sign(spec: Mapping[str, Any], secret: str, outgoing: _Outgoing) -> dict[str, str]:
    return {}


_SCHEMES: Mapping[str | None, _Scheme] = {
    "hmac": _Scheme(_hmac_check, _hmac_sign),
    "stripe": _Scheme(_stripe_check, _stripe_sign),
    "standard-webhooks": _Scheme(_sw_check, _sw_sign),
    "api-key": _Scheme(
        _shared_secret_check("api_key_missing", "api_key_invalid"), _shared_secret_sign
    ),
    "header-secret": _Scheme(
        _shared_secret_check("signature_missing", "signature_mismatch"), _shared_secret_sign
    ),
    "any-of": _Scheme(_any_of_check, _any_of_sign),
    "none": _Scheme(_none_check, _none_sign),
}
