"""The Salesforce target: upsert records by external id through the REST API.

The real simple-salesforce client does the talking. This module decides how a batch of upserts
becomes API calls (one sObject Collections call per 200 records of one object and external id
field, parents in an earlier call than their children), what each answer means for each record,
and which faults are worth a retry: expired sessions get one new login, limits and outages raise
:class:`TransientTargetError`, and everything Salesforce refuses about a record stays with that
record.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from prometheus_client import Gauge
from requests import PreparedRequest, Response, Session
from requests.adapters import BaseAdapter
from requests.exceptions import ChunkedEncodingError, SSLError, Timeout
from requests.exceptions import ConnectionError as RequestsConnectionError
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)
from simple_salesforce.format import format_external_id
from simple_salesforce.login import SalesforceLogin

from gateway.errors import TargetError, TransientTargetError
from gateway.targets.base import UpsertRequest, UpsertResult, json_ready

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Most records Salesforce takes in one sObject Collections call.
COLLECTION_LIMIT = 200
#: Record errors that pass by themselves: another transaction held the record (or its parent),
#: and Salesforce's advice is to send it again.
RETRYABLE_RECORD_ERRORS = frozenset({"UNABLE_TO_LOCK_ROW"})
#: Sending too fast, as a proxy or Salesforce's edge may answer: worth a retry, like a 5xx.
TOO_MANY_REQUESTS = 429

API_USAGE = Gauge(
    "gateway_salesforce_api_usage",
    "API requests the Salesforce org has used and allows in 24 hours (Sforce-Limit-Info).",
    ["target", "kind"],
)


class AuthMode(StrEnum):
    """How the target gets a Salesforce session; the first complete one is used."""

    #: A session id (access token) and instance URL handed in; it cannot be renewed.
    SESSION_ID = "session_id"
    #: A Connected App's certificate signs a token for a user; no password stored.
    JWT_BEARER = "jwt_bearer"
    #: A Connected App's key and secret, on the org's My Domain, run as its configured user.
    CLIENT_CREDENTIALS = "client_credentials"
    #: A user's password and security token, through the SOAP login.
    PASSWORD = "password"


#: The settings each mode needs; each is read from ``SALESFORCE_`` + its name in capitals.
_REQUIRED: dict[AuthMode, tuple[str, ...]] = {
    AuthMode.SESSION_ID: ("session_id", "instance_url"),
    AuthMode.JWT_BEARER: ("consumer_key", "private_key_file", "username"),
    AuthMode.CLIENT_CREDENTIALS: ("consumer_key", "consumer_secret", "domain"),
    AuthMode.PASSWORD: ("username", "password", "security_token"),
}
#: Login domains shared by all orgs; client credentials need the org's own My Domain.
_SHARED_DOMAINS = frozenset({"login", "test"})
_HINTS = {"domain": " (the org's My Domain, e.g. acme.my)"}
_VARIABLES = (
    "username",
    "password",
    "security_token",
    "domain",
    "consumer_key",
    "consumer_secret",
    "private_key_file",
    "instance_url",
    "session_id",
    "api_version",
    "ca_bundle",
    "timeout_s",
)


@dataclass(frozen=True)
class SalesforceSettings:
    """How to reach one Salesforce org; secrets stay out of ``repr`` so logs cannot show them."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: May be empty when the org trusts the gateway's IP range.
    security_token: str | None = field(default=None, repr=False)
    #: ``login``, ``test`` (sandboxes) or a My Domain such as ``acme.my``.
    domain: str = "login"
    consumer_key: str | None = field(default=None, repr=False)
    consumer_secret: str | None = field(default=None, repr=False)
    private_key_file: str | None = None
    instance_url: str | None = None
    session_id: str | None = field(default=None, repr=False)
    api_version: str = "62.0"
    #: A PEM file of CAs to trust instead of the system's, e.g. behind a TLS-inspecting proxy.
    ca_bundle: str | None = None
    timeout_s: float = 30.0
    #: The profile these were read for; ``None`` for the unprefixed variables.
    profile: str | None = None
    auth_mode: AuthMode = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "domain", _bare_domain(self.domain))
        object.__setattr__(self, "api_version", self.api_version.removeprefix("v"))
        object.__setattr__(self, "auth_mode", self._pick_auth_mode())

    @classmethod
    def from_env(cls, env: Mapping[str, str], profile: str | None = None) -> SalesforceSettings:
        """Read ``SALESFORCE_*``; ``SALESFORCE_<PROFILE>_*`` wins so one gateway feeds many orgs."""
        values: dict[str, Any] = {}
        for name in _VARIABLES:
            value = _lookup(env, name, profile)
            if value is not None:
                values[name] = value
        if "timeout_s" in values:
            values["timeout_s"] = _seconds(values["timeout_s"], _variable("timeout_s", profile))
        return cls(profile=profile, **values)

    def _pick_auth_mode(self) -> AuthMode:
        for mode, names in _REQUIRED.items():
            if not self._missing(names):
                return mode
        options = "; ".join(
            f"{mode.value} needs {', '.join(self._describe(n) for n in self._missing(names))}"
            for mode, names in _REQUIRED.items()
        )
        scope = f" for profile {self.profile!r}" if self.profile else ""
        fallback = (
            f" (each SALESFORCE_{self.profile.upper()}_* falls back to SALESFORCE_*)"
            if self.profile
            else ""
        )
        raise TargetError(
            f"Salesforce settings{scope} are incomplete; complete one login: {options}{fallback}"
        )

    def _missing(self, names: Sequence[str]) -> list[str]:
        return [name for name in names if not self._has(name)]

    def _has(self, name: str) -> bool:
        value = getattr(self, name)
        if name == "domain":
            return value not in _SHARED_DOMAINS
        if name == "security_token":
            return value is not None
        return bool(value)

    def _describe(self, name: str) -> str:
        return _variable(name, self.profile) + _HINTS.get(name, "")


def _variable(name: str, profile: str | None) -> str:
    prefix = f"SALESFORCE_{profile.upper()}_" if profile else "SALESFORCE_"
    return prefix + name.upper()


def _lookup(env: Mapping[str, str], name: str, profile: str | None) -> str | None:
    """The profile's value, else the shared one; empty is unset, except for the token."""
    keys = [_variable(name, profile), _variable(name, None)] if profile else [_variable(name, None)]
    for key in keys:
        value = env.get(key)
        if value or (value == "" and name == "security_token"):
            return value
    return None


def _seconds(raw: str, variable: str) -> float:
    error = TargetError(f"{variable} must be a positive number of seconds, not {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise error from None
    if value <= 0:
        raise error
    return value


def _bare_domain(domain: str) -> str:
    """Accept ``https://acme.my.salesforce.com`` too: simple-salesforce wants ``acme.my``."""
    return domain.removeprefix("https://").rstrip("/").removesuffix(".salesforce.com")


class SalesforceTarget:
    """Upserts into one Salesforce org, spending as few API calls as the batch allows."""

    name = "salesforce"

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        session: Session | None = None,
        pause_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        #: How long to stop calling after Salesforce says the org's API limit is reached, and
        #: to stop logging in after it refuses a login.
        self.pause_s = pause_s
        #: HTTP requests sent, logins included, so tests and benchmarks can hold the budget.
        self.api_calls = 0
        #: ``(used, limit)`` from the last ``Sforce-Limit-Info`` header, if any came yet.
        self.api_usage: tuple[int, int] | None = None
        self._clock = clock
        self._paused_until = float("-inf")
        self._login_refused_until = float("-inf")
        self._login_refusal = ""
        self._owns_session = session is None
        self._session = session or Session()
        self._client: Salesforce | None = None
        self._label = settings.profile or "default"
        self._lock = threading.Lock()
        for prefix, adapter in list(self._session.adapters.items()):
            self._session.mount(prefix, _Metered(adapter, self))

    def close(self) -> None:
        """Close the HTTP session if the target made it."""
        if self._owns_session:
            self._session.close()

    def upsert(self, requests: Sequence[UpsertRequest]) -> list[UpsertResult]:
        """Apply ``requests`` call by call; a fault of the first call raises instead.

        A fault of a later call ends the batch there: what the earlier calls applied keeps its
        results, so those events are settled and not sent again, and every record not yet
        applied gets the fault as its result. One batch at a time: the target is shared by the
        process, and its session with it.
        """
        with self._lock:
            self._refuse_while_paused()
            results: dict[int, UpsertResult] = {}
            calls = _plan(requests)
            unapplied = _Unapplied()
            for made, call in enumerate(calls):
                sendable = unapplied.answer_orphans(call, results)
                if not sendable:
                    continue
                try:
                    answers = self._send(sendable)
                except TargetError as exc:
                    if made == 0:
                        raise
                    unsent = sendable + [record for rest in calls[made + 1 :] for record in rest]
                    _answer(results, unsent, [UpsertResult.from_error(exc)] * len(unsent))
                    break
                _answer(results, sendable, answers)
                unapplied.note(sendable, answers)
            return [results[position] for position in range(len(requests))]

    def _refuse_while_paused(self) -> None:
        """Refuse a batch, without a call, while the org's limit or a refused login holds.

        Each batch logging in again with credentials Salesforce refused would soon lock the
        integration user out (after ten failures, by default), even once they are fixed.
        """
        now = self._clock()
        if self._paused_until > now:
            remaining = self._paused_until - now
            raise TransientTargetError(
                f"Salesforce API request limit reached; calls paused for another {remaining:.0f} s",
                retry_after_s=remaining,
            )
        if self._login_refused_until > now:
            raise TargetError(
                f"{self._login_refusal}; the login is tried again in "
                f"{self._login_refused_until - now:.0f} s, or as soon as the stored "
                "credentials change"
            )

    def _send(self, records: list[_Record]) -> list[UpsertResult]:
        """One API call: the single-record route for one record, a collection for more."""
        if len(records) == 1:
            return [self._upsert_one(records[0].request)]
        return self._upsert_collection([record.request for record in records])

    def _upsert_one(self, request: UpsertRequest) -> UpsertResult:
        path = format_external_id(request.external_id_field, request.external_id)
        body = json_ready(request.body())
        try:
            response = self._call(
                lambda sf: getattr(sf, request.object).upsert(path, body, raw_response=True)
            )
        except SalesforceError as exc:
            return _refused(exc)
        if response.status_code == 204:  # an update before API 46.0: no body
            return UpsertResult(ok=True, created=False)
        answer = response.json()
        created = answer.get("created", response.status_code == 201)
        return UpsertResult(ok=True, created=created, record_id=answer.get("id"))

    def _upsert_collection(self, requests: list[UpsertRequest]) -> list[UpsertResult]:
        first = requests[0]
        path = f"composite/sobjects/{first.object}/{first.external_id_field}"
        payload = json.dumps({"allOrNone": False, "records": [_item(r) for r in requests]})
        try:
            # One answer per record, in order, for a sObject Collections upsert.
            answers = cast(
                "list[Mapping[str, Any]]",
                self._call(lambda sf: sf.restful(path, method="PATCH", data=payload)),
            )
        except SalesforceError as exc:
            return [_refused(exc)] * len(requests)
        return [_item_result(answer) for answer in answers]

    def _call(self, call: Callable[[Salesforce], T]) -> T:
        """Run one API call, turning faults of the whole call into gateway errors.

        What still escapes as a ``SalesforceError`` is Salesforce refusing the records.
        """
        try:
            return self._with_session(call)
        except SalesforceAuthenticationFailed as exc:
            message = f"Salesforce login failed: {exc.code}: {exc.auth_message}"
            if isinstance(exc.code, int) and exc.code >= 500:
                raise TransientTargetError(message) from exc
            self._login_refused_until = self._clock() + self.pause_s
            self._login_refusal = message
            raise TargetError(message) from exc
        except SalesforceRefusedRequest as exc:
            if "REQUEST_LIMIT_EXCEEDED" not in _error_codes(exc.content):
                raise
            self._paused_until = self._clock() + self.pause_s
            logger.warning("Salesforce API limit reached; pausing calls for %.0f s", self.pause_s)
            raise TransientTargetError(
                f"Salesforce API request limit exceeded; calls paused for {self.pause_s:.0f} s",
                retry_after_s=self.pause_s,
            ) from exc
        except SalesforceGeneralError as exc:
            if exc.status < 500 and exc.status != TOO_MANY_REQUESTS:
                raise
            raise TransientTargetError(f"Salesforce answered HTTP {exc.status}") from exc
        except (RequestsConnectionError, Timeout, ChunkedEncodingError) as exc:
            if isinstance(exc, SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise TargetError(
                    f"Salesforce's TLS certificate is not trusted ({exc}); "
                    "check SALESFORCE_CA_BUNDLE"
                ) from exc
            raise TransientTargetError(f"Salesforce unreachable: {exc}") from exc

    def _with_session(self, call: Callable[[Salesforce], T]) -> T:
        """Run ``call``; an expired session gets one new login and one resend, never more.

        simple-salesforce retries expired sessions itself, without end when Salesforce keeps
        refusing, so its client is always built from a session id (it then raises instead) and
        the login is done here.
        """
        try:
            return call(self._connected())
        except SalesforceExpiredSession as exc:
            if self.settings.auth_mode is AuthMode.SESSION_ID:
                raise TargetError(
                    f"Salesforce refused the session id ({_describe(exc)}); set a new "
                    "SALESFORCE_SESSION_ID or configure a login that can renew it"
                ) from exc
            logger.info("Salesforce session expired; logging in again")
            self._client = None
        try:
            return call(self._connected())
        except SalesforceExpiredSession as exc:
            raise TargetError(
                f"Salesforce refused a session it had just issued ({_describe(exc)}); "
                "check the integration user's API access"
            ) from exc

    def _connected(self) -> Salesforce:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> Salesforce:
        settings = self.settings
        if settings.auth_mode is AuthMode.SESSION_ID:
            return Salesforce(
                session_id=settings.session_id,
                instance_url=settings.instance_url,
                version=settings.api_version,
                session=self._session,
            )
        session_id, instance = SalesforceLogin(
            session=self._session, sf_version=settings.api_version, **_login_arguments(settings)
        )
        logger.info("Logged in to Salesforce at %s (%s)", instance, settings.auth_mode.value)
        return Salesforce(
            session_id=session_id,
            instance=instance,
            version=settings.api_version,
            session=self._session,
        )

    def _observe(self, response: Response) -> None:
        """Keep the org's API usage from the response headers, for the admin and the gauge."""
        header = response.headers.get("Sforce-Limit-Info")
        usage = Salesforce.parse_api_usage(header).get("api-usage") if header else None
        if usage is None:
            return
        self.api_usage = (usage.used, usage.total)
        API_USAGE.labels(target=self._label, kind="used").set(usage.used)
        API_USAGE.labels(target=self._label, kind="limit").set(usage.total)


def _login_arguments(settings: SalesforceSettings) -> dict[str, Any]:
    """simple-salesforce's login arguments for the settings' mode."""
    arguments = {name: getattr(settings, name) for name in _REQUIRED[settings.auth_mode]}
    if "private_key_file" in arguments:
        arguments["privatekey"] = _private_key(arguments.pop("private_key_file"))
    arguments["domain"] = settings.domain
    return arguments


def _private_key(path: str) -> str:
    """The Connected App's signing key, read here so that a bad file gets a clear error."""
    try:
        pem = Path(path).read_bytes()
        serialization.load_pem_private_key(pem, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise TargetError(
            f"SALESFORCE_PRIVATE_KEY_FILE {path!r} is not an unencrypted PEM private key: {exc}"
        ) from exc
    return pem.decode()


class _Metered(BaseAdapter):
    """Every request the client sends, its logins included, goes through here.

    simple-salesforce has no timeout option, and ``session.verify`` loses to
    ``REQUESTS_CA_BUNDLE`` in requests' settings merge, so both are applied at the transport;
    the request is counted and its answer's API usage read on the way.
    """

    def __init__(self, inner: BaseAdapter, target: SalesforceTarget) -> None:
        super().__init__()
        self._inner = inner
        self._target = target

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        settings = self._target.settings
        self._target.api_calls += 1
        response = self._inner.send(
            request,
            stream=stream,
            timeout=settings.timeout_s if timeout is None else timeout,
            verify=settings.ca_bundle or verify,
            cert=cert,
            proxies=proxies,
        )
        logger.debug(
            "Salesforce %s %s -> %s",
            request.method,
            urlsplit(request.url or "").path,
            response.status_code,
        )
        self._target._observe(response)
        return response

    def close(self) -> None:
        self._inner.close()


@dataclass
class _Record:
    """One distinct record of a call: its requests merged, and the positions they answer."""

    request: UpsertRequest
    positions: list[int]

    def absorb(self, request: UpsertRequest, position: int) -> None:
        """Fold in a later request for the same record; its fields win, as one call later would.

        Salesforce refuses a collection naming one external id twice (DUPLICATE_VALUE).
        """
        self.request = replace(
            self.request,
            fields={**self.request.fields, **request.fields},
            parent=request.parent or self.request.parent,
        )
        self.positions.append(position)


class _Unapplied:
    """The records of a batch that an earlier call did not apply, by external id field and
    value, as children name their parent.

    A child of such a record is not sent: Salesforce would refuse it for a parent it lacks, or
    worse, link it to the parent's old version. It gets the outcome ``parent_failed`` instead,
    retried or failed as its parent is, so it is sent again with its parent. Like the waves,
    this goes by the field and value a child names, not by object.
    """

    def __init__(self) -> None:
        self._refused: dict[tuple[str, str], tuple[UpsertRequest, UpsertResult]] = {}

    def answer_orphans(
        self, call: list[_Record], results: dict[int, UpsertResult]
    ) -> list[_Record]:
        """Answer the records of ``call`` whose parent was not applied; the others, to send."""
        sendable = []
        for record in call:
            parent = self._parent(record)
            if parent is None:
                sendable.append(record)
                continue
            orphaned = _orphaned(*parent)
            _answer(results, [record], [orphaned])
            self._refused[_key(record.request)] = (record.request, orphaned)  # its children too
        return sendable

    def note(self, records: list[_Record], answers: list[UpsertResult]) -> None:
        """Keep the records a call refused, and forget those it applied after all."""
        for record, answer in zip(records, answers, strict=True):
            if answer.ok:
                self._refused.pop(_key(record.request), None)
            else:
                self._refused[_key(record.request)] = (record.request, answer)

    def _parent(self, record: _Record) -> tuple[UpsertRequest, UpsertResult] | None:
        link = record.request.parent
        if link is None:
            return None
        return self._refused.get((link.external_id_field, link.external_id))


def _orphaned(parent: UpsertRequest, result: UpsertResult) -> UpsertResult:
    """The result of a record not sent because its parent was not applied (``result``)."""
    reason = "its own parent was not applied" if result.parent_failed else result.error
    return UpsertResult(
        ok=False,
        error=f"not sent: its parent {parent.object} {parent.external_id!r} was not applied"
        f" ({reason}); it is sent again with its parent",
        transient=result.transient,
        retry_after_s=result.retry_after_s,
        parent_failed=True,
    )


def _key(request: UpsertRequest) -> tuple[str, str]:
    return (request.external_id_field, request.external_id)


def _plan(requests: Sequence[UpsertRequest]) -> list[list[_Record]]:
    """Split the batch into API calls: by wave, then by object and field, 200 records a call."""
    calls: list[list[_Record]] = []
    for wave in _waves(requests):
        groups: dict[tuple[str, str], dict[str, _Record]] = {}
        for position in wave:
            request = requests[position]
            group = groups.setdefault((request.object, request.external_id_field), {})
            if request.external_id in group:
                group[request.external_id].absorb(request, position)
            else:
                group[request.external_id] = _Record(request, [position])
        for group in groups.values():
            calls += _calls(list(group.values()))
    return calls


def _calls(records: list[_Record]) -> list[list[_Record]]:
    """One object's records in calls of up to 200, in order.

    A unique external id field matches "A-1" to "a-1" unless the org made it case-sensitive,
    and Salesforce refuses a collection naming one record twice: ids that differ in case only
    go in separate calls, the later one in a later call.
    """
    calls: list[list[_Record]] = []
    call_of: dict[str, int] = {}
    first_open = 0  # calls before it are full
    for record in records:
        folded = record.request.external_id.casefold()
        index = max(call_of.get(folded, -1) + 1, first_open)
        while index < len(calls) and len(calls[index]) == COLLECTION_LIMIT:
            index += 1
        if index == len(calls):
            calls.append([])
        calls[index].append(record)
        call_of[folded] = index
        while first_open < len(calls) and len(calls[first_open]) == COLLECTION_LIMIT:
            first_open += 1
    return calls


def _waves(requests: Sequence[UpsertRequest]) -> list[list[int]]:
    """Positions by wave: a child goes one wave after a parent upserted earlier in the batch.

    Requests only name their parent by external id field and value, so a child may wait a wave
    for a namesake of another object; that costs a call, never a wrong order. A record's later
    requests never go in an earlier wave than its first, so later fields still win.
    """
    wave_of: dict[tuple[str, str], int] = {}
    waves: list[list[int]] = []
    for position, request in enumerate(requests):
        parent = request.parent
        parent_key = None if parent is None else (parent.external_id_field, parent.external_id)
        wave = 0 if parent_key is None else wave_of.get(parent_key, -1) + 1
        key = (request.external_id_field, request.external_id)
        wave = max(wave, wave_of.get(key, 0))
        wave_of[key] = wave
        if wave == len(waves):
            waves.append([])
        waves[wave].append(position)
    return waves


def _item(request: UpsertRequest) -> dict[str, Any]:
    """A record of a collection: its type, its external id, then its fields."""
    return {"attributes": {"type": request.object}, **json_ready(request.record())}


def _item_result(answer: Mapping[str, Any]) -> UpsertResult:
    if answer.get("success"):
        created = bool(answer.get("created"))
        return UpsertResult(ok=True, created=created, record_id=answer.get("id"))
    errors = answer.get("errors") or [{"statusCode": "UNKNOWN", "message": "no reason given"}]
    return _rejected("; ".join(_error_text(error) for error in errors), _error_codes(errors))


def _answer(
    results: dict[int, UpsertResult], records: list[_Record], answers: list[UpsertResult]
) -> None:
    """Give each request of ``records`` its record's result, by the request's batch position."""
    for record, result in zip(records, answers, strict=True):
        results.update(dict.fromkeys(record.positions, result))


def _refused(exc: SalesforceError) -> UpsertResult:
    return _rejected(_describe(exc), _error_codes(exc.content))


def _rejected(error: str, codes: set[str]) -> UpsertResult:
    """A refused record: for good, unless every reason is one that passes by itself."""
    transient = bool(codes) and codes <= RETRYABLE_RECORD_ERRORS
    return UpsertResult(ok=False, transient=transient, error=error)


def _describe(exc: SalesforceError) -> str:
    """Salesforce's own words for a refused call, so the admin can act on them."""
    content: Any = exc.content
    if exc.status == 300:  # the body lists the URLs of the records sharing the external id
        ids = [str(url).rsplit("/", 1)[-1] for url in content] if isinstance(content, list) else []
        return f"MULTIPLE_CHOICES: several records have this external id ({', '.join(ids)})"
    if isinstance(content, list) and content and all(isinstance(e, dict) for e in content):
        return "; ".join(_error_text(error) for error in content)
    return f"HTTP {exc.status}: {content}"


def _error_text(error: Mapping[str, Any]) -> str:
    """``CODE: message (fields: A, B)``; errorCode for one record, statusCode in collections."""
    code = _error_code(error)
    fields = error.get("fields") or []
    suffix = f" (fields: {', '.join(fields)})" if fields else ""
    return f"{code}: {error.get('message', '')}{suffix}"


def _error_codes(content: Any) -> set[str]:
    if not isinstance(content, list):
        return set()
    return {_error_code(error) for error in content if isinstance(error, Mapping)}


def _error_code(error: Mapping[str, Any]) -> str:
    return str(error.get("statusCode") or error.get("errorCode") or "UNKNOWN")
