"""Connector profiles: what each sender's deliveries look like, kept as data.

A profile is a JSON document (``schema.json`` says its shape) naming the verification scheme,
where each event's type, id and time are, and the event catalog of each function. Adding a
sender means adding a profile file (or POSTing one), never Python. Shipped profiles and their
sample deliveries are package data, read once through :mod:`importlib.resources`.

Sample deliveries live at ``samples/<connector>/<event type>.json`` with the event type
percent-encoded (:func:`urllib.parse.quote` with no safe characters), so ``Complete Sales`` is
``Complete%20Sales.json`` and ``orders/create`` is ``orders%2Fcreate.json``.
"""

from __future__ import annotations

import copy
import functools
import json
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any
from urllib.parse import quote, unquote

from jmespath.functions import Functions
from jsonschema import Draft202012Validator

from gateway.errors import Detail, ValidationFailed
from gateway.expressions import functions_called, syntax_problem, tree
from gateway.validation import details_of
from gateway.verify import PLACEHOLDER

#: In a group's or webhook record's events: every event of its function, even ones added later.
EVERY_EVENT = "*"
#: Accepted when a profile does not list its content types.
DEFAULT_CONTENT_TYPES = ("application/json",)

#: The keys that locate a value; each locator object takes exactly one of those it allows.
_LOCATORS = {
    "type": ("jmespath", "header"),
    "id": ("jmespath", "header", "hash_of"),
    "timestamp": ("jmespath", "header"),
}
#: Where JMESPath expressions sit inside ``events``.
_EXPRESSIONS = (
    ("split",),
    ("type", "jmespath"),
    ("id", "jmespath"),
    ("id", "hash_of"),
    ("timestamp", "jmespath"),
)


def subscribes(events: Collection[str], event_type: str) -> bool:
    """Whether a group or webhook record registering ``events`` takes ``event_type``."""
    return event_type in events or EVERY_EVENT in events


def _credential_headers(spec: Mapping[str, Any]) -> Iterator[str]:
    if spec.get("scheme") in ("api-key", "header-secret") and "header" in spec:
        yield str(spec["header"]).lower()
    for sub in spec.get("schemes", ()):
        yield from _credential_headers(sub)


@dataclass(frozen=True)
class Profile:
    """A validated profile document with the questions the rest of the gateway asks of it."""

    name: str
    title: str
    document: dict[str, Any]
    #: A custom profile's version; None for a shipped one, which never changes.
    version: int | None = None

    @functools.cached_property
    def events_key(self) -> str:
        """What the compiled reader is built from (events spec, content types, form field), as
        canonical JSON: its cache key.

        Computed once per profile, not once per delivery.
        """
        content_types = self.document.get("content_types", DEFAULT_CONTENT_TYPES)
        return json.dumps(
            [self.document["events"], list(content_types), self.document.get("form_field")],
            sort_keys=True,
        )

    @functools.cached_property
    def credential_headers(self) -> frozenset[str]:
        """Lower-cased headers that carry the secret itself (API keys, shared secrets).

        Never stored with a delivery; computed once per profile, not once per delivery.
        """
        return frozenset(_credential_headers(self.document["verification"]))

    @functools.cached_property
    def content_encodings(self) -> frozenset[str]:
        """The Content-Encoding codings its senders may compress a body with; often none."""
        return frozenset(self.document.get("content_encoding", {}).get("accept", ()))

    @property
    def signs_compressed(self) -> bool:
        """Whether a compressed body's signature covers it as sent, rather than decompressed."""
        return bool(self.document.get("content_encoding", {}).get("signed") == "compressed")

    @property
    def verification(self) -> dict[str, Any]:
        """The verification scheme object (never holds a secret: groups do)."""
        verification: dict[str, Any] = self.document["verification"]
        return verification

    def function(self, name: str) -> dict[str, Any]:
        """The function called ``name``; KeyError naming the ones there are if absent."""
        functions: list[dict[str, Any]] = self.document["functions"]
        for function in functions:
            if function["name"] == name:
                return function
        known = ", ".join(f["name"] for f in functions)
        raise KeyError(f"connector {self.name!r} has no function {name!r} (it has: {known})")

    def unknown_events(self, function: str, events: Iterable[str]) -> list[str]:
        """Events missing from a closed catalog, each once, in the order given (``*`` is every
        event, never unknown)."""
        found = self.function(function)
        if found.get("open_catalog", False):
            return []
        known = {*found["events"], EVERY_EVENT}
        return [event for event in dict.fromkeys(events) if event not in known]

    def registered(self, function: str, events: Iterable[str]) -> frozenset[str]:
        """The types a group registering ``events`` accepts: ``*`` is the function's catalog as
        it is now, or still ``*`` (any type) for an open catalog."""
        subscribed = frozenset(events)
        if EVERY_EVENT not in subscribed:
            return subscribed
        found = self.function(function)
        if found.get("open_catalog", False):
            return frozenset({EVERY_EVENT})
        return (subscribed - {EVERY_EVENT}) | frozenset(found["events"])

    def public(self) -> dict[str, Any]:
        """The document with its defaults spelled out, the events that have samples, its version
        and whether it is custom (editable) or shipped."""
        document = copy.deepcopy(self.document)
        document.setdefault("description", "")
        document.setdefault("content_types", list(DEFAULT_CONTENT_TYPES))
        for function in document["functions"]:
            function.setdefault("title", function["name"])
            function.setdefault("open_catalog", False)
        document["samples"] = sample_events(self)
        document["version"] = self.version
        document["custom"] = self.version is not None
        return document


def validate_profile(document: Any) -> Profile:
    """Check ``document`` against the schema and the rules a schema cannot say, all at once."""
    problems = [*details_of(_validator().iter_errors(document)), *_rule_problems(document)]
    if problems:
        raise ValidationFailed("the connector profile is not valid", details=problems)
    return Profile(name=document["name"], title=document["title"], document=copy.deepcopy(document))


@functools.cache
def shipped_profiles() -> dict[str, Profile]:
    """The profiles in the package, by name; an invalid one is a packaging bug and raises."""
    files = sorted(_package_dir("profiles").iterdir(), key=lambda f: f.name)
    profiles = (validate_profile(json.loads(f.read_text("utf-8"))) for f in files)
    return {profile.name: profile for profile in profiles}


def sample_events(profile: Profile) -> list[str]:
    """The event types that have a sample delivery for ``profile``, sorted."""
    folder = _package_dir("samples") / profile.name
    if not folder.is_dir():
        return []
    return sorted(unquote(f.name.removesuffix(".json")) for f in folder.iterdir())


def sample_path(profile: Profile, event_type: str) -> Traversable:
    """Where the sample delivery of ``event_type`` is (it may not exist)."""
    return _package_dir("samples") / profile.name / f"{quote(event_type, safe='')}.json"


def sample_delivery(profile: Profile, event_type: str) -> tuple[bytes, dict[str, str]]:
    """A sample body and the headers its sender adds to say the content type, type, id and time.

    Signature headers are not included: :func:`gateway.verify.sign` adds them for a secret. Each
    call makes a fresh id header, as a sender does for every delivery.
    """
    path = sample_path(profile, event_type)
    if not path.is_file():
        have = ", ".join(sample_events(profile)) or "none"
        raise KeyError(
            f"connector {profile.name!r} has no sample for event {event_type!r} (samples: {have})"
        )
    content_types = profile.document.get("content_types", DEFAULT_CONTENT_TYPES)
    headers = {"Content-Type": content_types[0]}
    events = profile.document["events"]
    if "header" in events["type"]:
        headers[events["type"]["header"]] = event_type
    if "header" in events.get("id", {}):
        headers[events["id"]["header"]] = str(uuid.uuid4())
    if "header" in events.get("timestamp", {}):
        headers[events["timestamp"]["header"]] = _now_as(events["timestamp"]["unit"])
    return path.read_bytes(), headers


def _now_as(unit: str) -> str:
    """The current time as a sender writes it in a header of that unit."""
    now = time.time()
    if unit == "iso":
        return datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
    return str(int(now * 1000) if unit == "ms" else int(now))


def _package_dir(name: str) -> Traversable:
    return resources.files(__name__) / name


@functools.cache
def _validator() -> Draft202012Validator:
    schema = json.loads((resources.files(__name__) / "schema.json").read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _rule_problems(document: Any) -> Iterator[Detail]:
    """What the schema cannot say; tolerant of a document the schema already refused."""
    if not isinstance(document, dict):
        return
    events = document.get("events")
    if isinstance(events, dict):
        yield from _locator_problems(events)
        yield from _expression_problems(events)
        yield from _index_problems(events)
    yield from _duplicate_functions(document.get("functions"))
    yield from _secret_problems(document.get("secret"))
    yield from _verification_problems(document.get("verification"), "verification")


def _locator_problems(events: dict[str, Any]) -> Iterator[Detail]:
    for field, keys in _LOCATORS.items():
        locator = events.get(field)
        if isinstance(locator, dict) and sum(key in locator for key in keys) != 1:
            yield Detail(f"events.{field}", f"needs exactly one of: {', '.join(keys)}")


def _expression_problems(events: dict[str, Any]) -> Iterator[Detail]:
    for path in _EXPRESSIONS:
        expression: Any = events
        for key in path:
            expression = expression.get(key) if isinstance(expression, dict) else None
        if isinstance(expression, str) and (problem := _jmespath_problem(expression)):
            yield Detail("events." + ".".join(path), problem)


def _jmespath_problem(expression: str) -> str | None:
    """Why ``expression`` would fail on every delivery: bad syntax or an unknown function."""
    if problem := syntax_problem(expression):
        return problem
    called = {name for name, _ in functions_called(tree(expression))}
    unknown = sorted(called - Functions.FUNCTION_TABLE.keys())
    return f"unknown JMESPath function: {', '.join(unknown)}" if unknown else None


def _index_problems(events: dict[str, Any]) -> Iterator[Detail]:
    """A delivery-level id on a split delivery would give all of its events one dedupe key."""
    locator = events.get("id")
    if "split" not in events or not isinstance(locator, dict) or locator.get("with_index"):
        return
    if "header" in locator or locator.get("from") == "delivery":
        yield Detail(
            "events.id.with_index",
            "must be true for an id taken from the delivery when the delivery is split",
        )


def _duplicate_functions(functions: Any) -> Iterator[Detail]:
    if not isinstance(functions, list):
        return
    first_at: dict[Any, int] = {}
    for index, function in enumerate(functions):
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            continue
        if name in first_at:
            yield Detail(
                f"functions[{index}].name",
                f"duplicate function name {name!r} (also functions[{first_at[name]}])",
            )
        first_at.setdefault(name, index)


def _verification_problems(spec: Any, path: str) -> Iterator[Detail]:
    """An hmac template whose placeholders could never all be filled, in alternatives too."""
    if not isinstance(spec, dict):
        return
    schemes = spec.get("schemes")
    if spec.get("scheme") == "any-of" and isinstance(schemes, list):
        for index, sub in enumerate(schemes):
            yield from _verification_problems(sub, f"{path}.schemes[{index}]")
    elif spec.get("scheme") == "hmac":
        yield from _template_problems(spec, path)


def _template_problems(spec: dict[str, Any], path: str) -> Iterator[Detail]:
    content = spec.get("signed_content", "{body}")
    fmt = spec.get("format", "{signature}")
    parts = spec.get("parts", {})
    if not (isinstance(content, str) and isinstance(fmt, str) and isinstance(parts, dict)):
        return
    signed = PLACEHOLDER.findall(content)
    if signed.count("body") != 1:
        yield Detail(f"{path}.signed_content", "must hold {body} exactly once")
    if "signature" in signed:
        yield Detail(f"{path}.signed_content", "cannot hold {signature}, which signs it")
    separator = spec.get("separator")
    items = fmt.split(separator) if isinstance(separator, str) and separator else [fmt]
    in_header: list[str] = []
    for item in items:
        found = PLACEHOLDER.findall(item)
        if len(found) != 1:
            yield Detail(f"{path}.format", f"item {item!r} must hold exactly one placeholder")
        in_header += found
    for name in sorted({"body", "signature"} & set(parts)):
        yield Detail(f"{path}.parts.{name}", f"{{{name}}} is never read from a header of its own")
    for name in sorted({*in_header} - {"signature"} | set(parts) - {"body", "signature"}):
        if name not in signed:
            yield Detail(f"{path}.signed_content", f"does not use {{{name}}}, read but unsigned")
    for name in dict.fromkeys(signed):
        where = (name in in_header) + (name in parts)
        if name != "body" and where != 1:
            problem = "is read from both format and parts" if where else "comes from nowhere"
            yield Detail(f"{path}.signed_content", f"{{{name}}} {problem}; say where it is read")


def _secret_problems(secret: Any) -> Iterator[Detail]:
    if not isinstance(secret, dict):
        return
    low, high = secret.get("min_length"), secret.get("max_length")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        yield Detail("secret", f"min_length {low} is greater than max_length {high}")
