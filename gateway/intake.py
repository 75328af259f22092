"""Turn one raw delivery into the events it carries, each with its type, dedupe key and time.

Pure (no Flask, no database) and on the receive hot path: the body is parsed once, and each
events spec is compiled once into a reader that is cached by the spec's content, so custom
profiles reloaded from the database share the compiled form of an unchanged spec.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.connectors import DEFAULT_CONTENT_TYPES, Profile
from gateway.errors import InvalidPayload, UnsupportedContentType
from gateway.expressions import Query, SearchFailed
from gateway.validation import finite_float, refuse_constant

#: Longer event types are refused: they are stored, indexed and shown in lists.
MAX_TYPE_LENGTH = 200
#: Longer dedupe keys are replaced by their hash, so any provider id fits the index.
MAX_KEY_LENGTH = 255

_PER_SECOND = {"s": 1, "ms": 1000}
#: The form encoding some senders offer besides JSON (GitHub's ``payload=<JSON>``).
FORM = "application/x-www-form-urlencoded"

_KINDS = {
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}


@dataclass(frozen=True)
class IncomingEvent:
    """One event of a delivery, ready to be stored."""

    type: str
    #: ``id:<provider id>`` (``#<index>`` appended when the profile asks), or ``sha256:<hex>``.
    dedupe_key: str
    payload: Any
    #: When the sender says it happened, in UTC; None when it does not say, or not readably.
    occurred_at: datetime | None
    #: The payload's JSON text when the event is the whole body: stored as it came, not
    #: encoded again from the parsed value.
    payload_json: str | None = None


def split_delivery(
    profile_or_events_spec: Profile | Mapping[str, Any],
    headers: Mapping[str, str],
    body: bytes,
    content_type: str | None,
) -> list[IncomingEvent]:
    """The events in one delivery, in order; InvalidPayload or UnsupportedContentType if none.

    ``headers`` must have lower-cased names. A bare events spec (a profile's ``events``)
    accepts the default content types.
    """
    if isinstance(profile_or_events_spec, Profile):
        key = profile_or_events_spec.events_key
    else:
        key = json.dumps(
            [profile_or_events_spec, list(DEFAULT_CONTENT_TYPES), None], sort_keys=True
        )
    reader = _reader(key)
    text = reader.json_text(body, reader.media(content_type))
    try:
        return reader.events(headers, _parse(text), text)
    except SearchFailed as exc:
        raise InvalidPayload(str(exc)) from exc
    except RecursionError as exc:
        raise InvalidPayload("the body is nested too deeply") from exc


def _text(body: bytes) -> str:
    """The body as text: UTF-8, a byte order mark tolerated."""
    if not body:
        raise InvalidPayload("empty body")
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(f"the body is not valid UTF-8 (byte {exc.start})") from exc


def _form_field(text: str, name: str) -> str:
    """The value of form field ``name``: the JSON a form-encoded delivery carries."""
    try:
        fields = urllib.parse.parse_qs(
            text, keep_blank_values=True, strict_parsing=True, errors="strict"
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPayload(f"the body is not a valid form: {exc}") from exc
    values = fields.get(name, [])
    if len(values) != 1:
        found = "no" if not values else f"{len(values)}"
        raise InvalidPayload(f"the form has {found} {name!r} fields; one holding JSON is expected")
    return values[0]


#: How deeply a payload may nest: far more than any sender needs, and far less than Python's
#: recursion limit. Whatever reads a stored payload back (the database driver, the event list,
#: its console page, a preview) recurses once or more per level from deeper in the stack than
#: the receiver: a payload the receiver barely managed to parse broke the event list for all.
MAX_DEPTH = 100


def _parse(text: str) -> Any:
    """Strict JSON: no NaN, no infinite numbers, no deeper than MAX_DEPTH."""
    try:
        value = _STRICT_JSON.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidPayload(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            f" (char {exc.pos})"
        ) from exc
    except ValueError as exc:  # from the hooks above, or an integer too long to convert
        raise InvalidPayload(f"the body is not valid JSON: {exc}") from exc
    # Fewer brackets than MAX_DEPTH cannot nest deeper: most bodies need no walk.
    if text.count("[") + text.count("{") > MAX_DEPTH and _nests_deeper(value, MAX_DEPTH):
        raise InvalidPayload(f"the body is nested more than {MAX_DEPTH} levels deep")
    return value


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest more than ``limit`` levels (no recursion)."""
    pending = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


#: Built once: ``json.loads`` with options builds a decoder (and its scanner) on every call.
_STRICT_JSON = json.JSONDecoder(parse_constant=refuse_constant, parse_float=finite_float)


@dataclass(frozen=True)
class _Header:
    """A value carried in a request header (names are lower-cased on both sides)."""

    name: str

    def find(self, headers: Mapping[str, str], delivery: Any, event: Any) -> Any:
        return headers.get(self.name)

    def where(self) -> str:
        return f"in header {self.name}"


@dataclass(frozen=True)
class _Path:
    """A value found by a JMESPath on the event, or on the whole delivery."""

    expression: Query
    on_delivery: bool = False

    def find(self, headers: Mapping[str, str], delivery: Any, event: Any) -> Any:
        return self.expression.search(delivery if self.on_delivery else event)

    def where(self) -> str:
        return f"at `{self.expression.text}`"


_Locator = _Header | _Path


@dataclass(frozen=True)
class _Reader:
    """A compiled events spec and the content types its sender may use."""

    accepted: frozenset[str]
    #: The form field holding the JSON when the sender posts a form; None if it never does.
    form_field: str | None
    split: Query | None
    type: _Locator
    id: _Locator | None
    #: What to hash when there is no provider id; None hashes the whole event.
    hash_of: Query | None
    with_index: bool
    #: Where the event's time is, and its unit.
    timestamp: tuple[_Locator, str] | None

    def media(self, content_type: str | None) -> str | None:
        """The media type, lower-cased; UnsupportedContentType unless JSON or a listed one.

        No content type is fine: the body is parsed as JSON anyway.
        """
        if content_type is None or not content_type.strip():
            return None
        media = content_type.partition(";")[0].strip().lower()
        if media not in self.accepted and not media.endswith("+json"):
            raise UnsupportedContentType(
                f"content type {content_type.strip()!r} is not accepted: send JSON"
            )
        return media

    def json_text(self, body: bytes, media: str | None) -> str:
        """The JSON text of the body: the body itself, or its form field when it is a form."""
        text = _text(body)
        if media == FORM and self.form_field is not None:
            return _form_field(text, self.form_field)
        return text

    def events(self, headers: Mapping[str, str], delivery: Any, text: str) -> list[IncomingEvent]:
        """The delivery's events; ``text`` is the JSON ``delivery`` was parsed from."""
        return [
            IncomingEvent(
                type=self._type(headers, delivery, event, index),
                dedupe_key=self._dedupe_key(headers, delivery, event, index),
                payload=event,
                occurred_at=self._time(headers, delivery, event),
                payload_json=text if self.split is None else None,
            )
            for index, event in enumerate(self._split(delivery))
        ]

    def _split(self, delivery: Any) -> list[Any]:
        if self.split is None:
            return [delivery]
        found = self.split.search(delivery)
        where = f"`{self.split.text}`"
        if not isinstance(found, list):
            raise InvalidPayload(f"{where} should be a list of events, found {_kind(found)}")
        if not found:
            raise InvalidPayload(f"{where} is an empty list: the delivery carries no event")
        return found

    def _type(self, headers: Mapping[str, str], delivery: Any, event: Any, index: int) -> str:
        found = self.type.find(headers, delivery, event)
        where = self.type.where() + (f" in event {index}" if self.split is not None else "")
        if found is None or found == "":
            raise InvalidPayload(f"no event type {where}")
        if not isinstance(found, str):
            raise InvalidPayload(f"the event type {where} is {_kind(found)}, not a string")
        if len(found) > MAX_TYPE_LENGTH:
            raise InvalidPayload(
                f"the event type {where} is {len(found)} characters long;"
                f" at most {MAX_TYPE_LENGTH} are allowed"
            )
        return found

    def _dedupe_key(self, headers: Mapping[str, str], delivery: Any, event: Any, index: int) -> str:
        """The provider's id when it has one; otherwise a hash, so a resent event matches."""
        found = self.id.find(headers, delivery, event) if self.id is not None else None
        if found is None or found == "":
            content = event if self.hash_of is None else self.hash_of.search(event)
            key = "sha256:" + _sha256(_canonical(content))
        else:
            text = found if isinstance(found, str) else _canonical(found).decode(*_SURROGATES)
            key = "id:" + text
        if self.with_index:
            key += f"#{index}"
        return key if len(key) <= MAX_KEY_LENGTH else "sha256:" + _sha256(_utf8(key))

    def _time(self, headers: Mapping[str, str], delivery: Any, event: Any) -> datetime | None:
        if self.timestamp is None:
            return None
        locator, unit = self.timestamp
        return _moment(locator.find(headers, delivery, event), unit)


@functools.lru_cache(maxsize=256)
def _reader(key: str) -> _Reader:
    """Compile an events spec (given as canonical JSON, so that it can be a cache key)."""
    spec, content_types, form_field = json.loads(key)
    ids = spec.get("id", {})
    timestamp = spec.get("timestamp")
    return _Reader(
        accepted=frozenset({*DEFAULT_CONTENT_TYPES, *content_types}),
        form_field=form_field,
        split=_compile(spec.get("split")),
        type=_locator(spec["type"]),
        id=_locator(ids) if ids.keys() & {"header", "jmespath"} else None,
        hash_of=_compile(ids.get("hash_of")),
        with_index=ids.get("with_index", False),
        timestamp=(_locator(timestamp), timestamp["unit"]) if timestamp else None,
    )


def _locator(spec: Mapping[str, Any]) -> _Locator:
    if "header" in spec:
        return _Header(spec["header"].lower())
    return _Path(Query.of(spec["jmespath"]), on_delivery=spec.get("from") == "delivery")


def _compile(expression: str | None) -> Query | None:
    return None if expression is None else Query.of(expression)


#: Keys sorted, no spaces, text as it is: the same value always gives the same key.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
#: Where orjson's text differs from json's: a float under 1e-4, which json always writes with
#: an exponent of two digits or more (``1e-05``, ``2.5e-07``) and orjson as ``0.00001`` or
#: ``2.5e-7``. Between them these find every such float (and, harmlessly, some text that only
#: looks like one); a pattern led by a literal is searched for many times faster.
_SMALL_FLOAT = b"0.0000"
_ONE_DIGIT_EXPONENT = re.compile(rb"e-[0-9](?![0-9])")


def _canonical(value: Any) -> bytes:
    """The value's canonical JSON as UTF-8, byte for byte json's: stored keys stay valid.

    orjson writes it five times faster (json's took 8 of the 19 us splitting a delivery cost);
    json writes what orjson writes otherwise or refuses (integers past 64 bits, lone surrogates).
    """
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        if _SMALL_FLOAT not in text and not _ONE_DIGIT_EXPONENT.search(text):
            return text
    except orjson.JSONEncodeError:
        pass
    return _utf8(_CANONICAL_JSON.encode(value))


#: JSON may carry lone surrogate escapes, which strict UTF-8 cannot encode.
_SURROGATES = ("utf-8", "surrogatepass")


def _utf8(text: str) -> bytes:
    return text.encode(*_SURROGATES)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _moment(value: Any, unit: str) -> datetime | None:
    """Epoch seconds or milliseconds (number or numeric string), or ISO 8601; naive means UTC."""
    if isinstance(value, bool):
        return None
    try:
        if unit == "iso":
            moment = datetime.fromisoformat(value)
        else:
            moment = datetime.fromtimestamp(float(value) / _PER_SECOND[unit], UTC)
        # An offset can carry the calendar's first or last day past it in UTC.
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _kind(value: Any) -> str:
    """A parsed JSON value's kind, in words."""
    return _KINDS.get(type(value), "a value")
