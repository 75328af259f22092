"""The HTTP target: each upsert as a JSON request to a receiver the admin runs.

Settings come from ``HTTP_*`` variables (``HTTP_<PROFILE>_*`` for ``http:<profile>``, falling
back to ``HTTP_*``), or from stored credentials laid over them. Every record is one request to
``HTTP_URL`` + ``HTTP_PATH`` with the record's names filled in; requests for one record go one
after another, in the batch's order, while different records are sent side by side, up to
``HTTP_CONCURRENCY`` at once.

What the receiver answers decides the upsert's fate: 2xx applied; 408, 425, 429, 5xx, timeouts
and refused connections retried later (after ``Retry-After`` when given); any other status
failed for good, since sending the same request again would get the same answer.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from enum import StrEnum
from ipaddress import ip_address
from string import Formatter
from urllib.parse import quote, urlsplit

from requests import RequestException, Response, Session
from requests.exceptions import SSLError

from gateway.errors import TargetError, TransientTargetError
from gateway.targets.base import UpsertRequest, UpsertResult, json_ready
from gateway.verify import sign

#: Answers that may pass if the same request is sent later.
RETRIED_STATUSES = frozenset({408, 425, 429})
#: A token is renewed this long before the receiver's token endpoint said it expires.
TOKEN_MARGIN_S = 30.0
#: What a path template may name.
PATH_FIELDS = frozenset({"object", "external_id", "external_id_field", "event_id"})
METHODS = ("POST", "PUT", "PATCH")
#: Characters of the receiver's answer kept in an upsert's error.
ANSWER_EXCERPT = 300
_STANDARD_WEBHOOKS = {"scheme": "standard-webhooks"}


class AuthMode(StrEnum):
    """How requests prove who sends them."""

    NONE = "none"
    #: ``Authorization: Bearer HTTP_TOKEN``.
    BEARER = "bearer"
    #: ``Authorization: Basic`` with ``HTTP_USERNAME`` and ``HTTP_PASSWORD``.
    BASIC = "basic"
    #: An OAuth 2.0 client-credentials token from ``HTTP_TOKEN_URL``, kept until it expires.
    OAUTH2 = "oauth2"
    #: Standard Webhooks headers, signed with ``HTTP_SIGNING_SECRET`` (a ``whsec_`` key).
    STANDARD_WEBHOOKS = "standard_webhooks"


_REQUIRED: dict[AuthMode, tuple[str, ...]] = {
    AuthMode.NONE: (),
    AuthMode.BEARER: ("token",),
    AuthMode.BASIC: ("username", "password"),
    AuthMode.OAUTH2: ("token_url", "client_id", "client_secret"),
    AuthMode.STANDARD_WEBHOOKS: ("signing_secret",),
}


@dataclass(frozen=True)
class HttpSettings:
    """Where and how one HTTP target sends; secrets are kept out of ``repr`` and so of logs."""

    url: str
    path: str = "/{object}/{external_id}"
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: AuthMode = AuthMode.NONE
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    scope: str | None = None
    signing_secret: str | None = field(default=None, repr=False)
    #: A PEM file of CAs to trust instead of the system's (a private CA, a test's own).
    ca_bundle: str | None = None
    timeout_s: float = 10.0
    #: Requests in flight at once from one worker process.
    concurrency: int = 4
    profile: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], profile: str | None = None) -> HttpSettings:
        """Read ``HTTP_*``; ``HTTP_<PROFILE>_*`` wins, so one gateway feeds many receivers.

        Raises :class:`TargetError` naming the variable for anything it cannot use.
        """

        def read(name: str) -> str | None:
            keys = [_variable(name, profile), _variable(name, None)]
            return next((env[key] for key in keys if env.get(key)), None)

        url = read("url")
        if url is None:
            raise TargetError(f"{_variable('url', profile)} is not set: the receiver's base URL")
        auth = _choice(read("auth") or "none", [m.value for m in AuthMode], "auth", profile)
        settings = cls(
            url=_endpoint(url, _variable("url", profile)),
            path=_path_template(read("path") or cls.path, profile),
            method=_choice((read("method") or cls.method).upper(), METHODS, "method", profile),
            headers=_headers(read("headers"), profile),
            auth=AuthMode(auth),
            token=read("token"),
            username=read("username"),
            password=read("password"),
            token_url=read("token_url"),
            client_id=read("client_id"),
            client_secret=read("client_secret"),
            scope=read("scope"),
            signing_secret=read("signing_secret"),
            ca_bundle=read("ca_bundle"),
            timeout_s=_number(read("timeout_s"), cls.timeout_s, "timeout_s", profile),
            concurrency=int(_number(read("concurrency"), cls.concurrency, "concurrency", profile)),
            profile=profile,
        )
        missing = [_variable(n, profile) for n in _REQUIRED[settings.auth] if not read(n)]
        if missing:
            raise TargetError(f"HTTP auth {auth} needs {', '.join(missing)}")
        if settings.token_url:
            _endpoint(settings.token_url, _variable("token_url", profile))
        return settings


def _variable(name: str, profile: str | None) -> str:
    return f"HTTP_{profile.upper()}_{name.upper()}" if profile else f"HTTP_{name.upper()}"


def _choice(value: str, allowed: Sequence[str], name: str, profile: str | None) -> str:
    if value not in allowed:
        raise TargetError(f"{_variable(name, profile)} must be one of {', '.join(allowed)}")
    return value


def _endpoint(url: str, variable: str) -> str:
    """An ``https://`` URL; plain ``http://`` only to this machine, where nothing can listen in."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return url.rstrip("/")
    raise TargetError(f"{variable} must be an https:// URL (http:// only to loopback), not {url!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _path_template(template: str, profile: str | None) -> str:
    """The path, checked now so that a typo fails at start-up, not record by record."""
    variable = _variable("path", profile)
    if not template.startswith("/"):
        raise TargetError(f"{variable} must start with '/', not {template!r}")
    try:
        named = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise TargetError(f"{variable} is not a valid template: {exc}") from None
    unknown = named - PATH_FIELDS
    if unknown:
        raise TargetError(
            f"{variable} names {', '.join(sorted(unknown))}; it may name "
            + ", ".join(f"{{{name}}}" for name in sorted(PATH_FIELDS))
        )
    return template


def _headers(raw: str | None, profile: str | None) -> dict[str, str]:
    if raw is None:
        return {}
    try:
        headers = json.loads(raw)
    except ValueError:
        headers = None
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise TargetError(f"{_variable('headers', profile)} must be a JSON object of strings")
    return headers


def _number(raw: str | None, default: float, name: str, profile: str | None) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0 or (isinstance(default, int) and not value.is_integer()):
        kind = "a positive whole number" if isinstance(default, int) else "a positive number"
        raise TargetError(f"{_variable(name, profile)} must be {kind}, not {raw!r}")
    return value


class _Refused(Exception):
    """The receiver's answer to one request, when it was not a success."""

    def __init__(self, result: UpsertResult) -> None:
        super().__init__(result.error)
        self.result = result


class HttpTarget:
    """Sends upserts to one HTTP receiver; lives as long as the process, with its token."""

    name = "http"

    def __init__(self, settings: HttpSettings, *, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        #: Requests sent, token requests included.
        self.api_calls = 0
        self._clock = clock
        self._session = Session()
        #: Given with each request: ``session.verify`` loses to ``REQUESTS_CA_BUNDLE``.
        self._verify: str | bool = settings.ca_bundle or True
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._session.close()

    def upsert(self, requests: Sequence[UpsertRequest]) -> list[UpsertResult]:
        """One request per upsert; each record's requests in order, records side by side."""
        lanes: dict[tuple[str, str], list[int]] = {}
        for position, request in enumerate(requests):
            lanes.setdefault((request.object, request.external_id), []).append(position)
        results: dict[int, UpsertResult] = {}
        workers = min(self.settings.concurrency, len(lanes)) or 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for lane_results in pool.map(
                lambda lane: self._send_lane(requests, lane), lanes.values()
            ):
                results.update(lane_results)
        return [results[position] for position in range(len(requests))]

    def _send_lane(
        self, requests: Sequence[UpsertRequest], positions: list[int]
    ) -> dict[int, UpsertResult]:
        """A record's upserts in order; after one fails, the later ones wait for a retry, so
        that the receiver never sees a later change before an earlier one."""
        results: dict[int, UpsertResult] = {}
        failed = False
        for position in positions:
            if failed:
                results[position] = UpsertResult(
                    ok=False,
                    transient=True,
                    error="not sent: an earlier upsert of this record in the batch failed",
                )
                continue
            results[position] = self._send(requests[position])
            failed = not results[position].ok
        return results

    def _send(self, request: UpsertRequest) -> UpsertResult:
        try:
            response = self._request(request)
        except TargetError as exc:
            return UpsertResult.from_error(exc)
        except _Refused as refused:
            return refused.result
        return _applied(response)

    def _request(self, request: UpsertRequest) -> Response:
        """Send one upsert; an OAuth token the receiver refuses is renewed once."""
        body = json.dumps(json_ready(request.record())).encode()
        url = self.settings.url + _fill(self.settings.path, request)
        response = self._post(url, body, self._auth_headers(request, body))
        if response.status_code == 401 and self.settings.auth is AuthMode.OAUTH2:
            with self._lock:
                self._token = None
            response = self._post(url, body, self._auth_headers(request, body))
        if response.ok:
            return response
        raise _Refused(_refusal(response))

    def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Response:
        sent = {**self.settings.headers, "Content-Type": "application/json", **headers}
        return self._call(
            lambda: self._session.request(
                self.settings.method,
                url,
                data=body,
                headers=sent,
                timeout=self.settings.timeout_s,
                verify=self._verify,
            )
        )

    def _call(self, send: Callable[[], Response]) -> Response:
        """Send, turning a receiver that cannot be reached into a transient error."""
        self.api_calls += 1
        try:
            return send()
        except SSLError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                variable = _variable("ca_bundle", self.settings.profile)
                raise TargetError(
                    f"the receiver's TLS certificate is not trusted ({exc}); check {variable}"
                ) from exc
            raise TransientTargetError(f"TLS failed: {exc}") from exc
        except RequestException as exc:
            raise TransientTargetError(f"receiver unreachable: {exc}") from exc

    def _auth_headers(self, request: UpsertRequest, body: bytes) -> dict[str, str]:
        settings = self.settings
        if settings.auth is AuthMode.BEARER:
            return {"Authorization": f"Bearer {settings.token}"}
        if settings.auth is AuthMode.BASIC:
            return {"Authorization": _basic(settings.username or "", settings.password or "")}
        if settings.auth is AuthMode.OAUTH2:
            return {"Authorization": f"Bearer {self._access_token()}"}
        if settings.auth is AuthMode.STANDARD_WEBHOOKS:
            secret = settings.signing_secret or ""
            return sign(_STANDARD_WEBHOOKS, secret, body, message_id=_message_id(request))
        return {}

    def _access_token(self) -> str:
        """The cached token while it lasts; one process fetches a new one at a time."""
        with self._lock:
            if self._token is not None and self._token[1] > self._clock():
                return self._token[0]
            token, lifetime = self._fetch_token()
            self._token = (token, self._clock() + max(lifetime - TOKEN_MARGIN_S, 0.0))
            return token

    def _fetch_token(self) -> tuple[str, float]:
        """RFC 6749 section 4.4: the client authenticates with HTTP Basic."""
        settings = self.settings
        form = {"grant_type": "client_credentials"}
        if settings.scope:
            form["scope"] = settings.scope
        client = _basic(settings.client_id or "", settings.client_secret or "")
        response = self._call(
            lambda: self._session.post(
                settings.token_url or "",
                data=form,
                headers={"Authorization": client},
                timeout=settings.timeout_s,
                verify=self._verify,
            )
        )
        if not response.ok:
            refusal = _refusal(response)
            message = f"the token endpoint refused the client: {refusal.error}"
            if refusal.transient:
                raise TransientTargetError(message, retry_after_s=refusal.retry_after_s)
            raise TargetError(message)
        try:
            answer = response.json()
            return str(answer["access_token"]), float(answer.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError) as exc:
            raise TargetError(f"the token endpoint's answer has no access_token: {exc}") from exc


def _fill(template: str, request: UpsertRequest) -> str:
    """The path with the record's names, each escaped so that it stays one path segment."""
    values = {
        "object": request.object,
        "external_id": request.external_id,
        "external_id_field": request.external_id_field,
        "event_id": request.source_event_id or "",
    }
    return template.format(**{k: quote(str(v), safe="") for k, v in values.items()})


def _message_id(request: UpsertRequest) -> str:
    """The same id for every attempt of one upsert, so the receiver can drop a repeat."""
    key = "\x1f".join((request.source_event_id or "", request.object, request.external_id))
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _basic(user: str, password: str) -> str:
    return "Basic " + b64encode(f"{user}:{password}".encode()).decode()


def _applied(response: Response) -> UpsertResult:
    """A success; ``201 Created`` says the record is new, and an ``id`` in the answer is kept."""
    record_id = None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("id"), str | int):
        record_id = str(answer["id"])
    return UpsertResult(ok=True, created=response.status_code == 201, record_id=record_id)


def _refusal(response: Response) -> UpsertResult:
    status = response.status_code
    excerpt = " ".join(response.text.split())[:ANSWER_EXCERPT]
    error = f"HTTP {status}{': ' + excerpt if excerpt else ''}"
    if status in RETRIED_STATUSES or status >= 500:
        return UpsertResult(
            ok=False, error=error, transient=True, retry_after_s=_retry_after(response)
        )
    return UpsertResult(ok=False, error=error)


def _retry_after(response: Response) -> float:
    """``Retry-After`` in seconds, given as seconds or as an HTTP date; 0 when absent."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return 0.0
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return 0.0
