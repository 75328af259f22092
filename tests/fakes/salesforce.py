"""A small Salesforce org over real HTTPS, for tests and benchmarks.

It answers the routes the gateway uses (the SOAP and OAuth logins, single-record upserts by
external id, sObject Collections upserts) with Salesforce's status codes and bodies, so the real
simple-salesforce client runs unchanged against it. Faults are forced from a queue, and what
arrived can be inspected afterwards.

    with FakeSalesforce([SObject("Account")]) as fake:
        session = fake.client_session()        # *.salesforce.com -> this server
        env = fake.env("password")             # SALESFORCE_* for one login mode
        fake.fail_next(SESSION_EXPIRED)        # the next data call answers 401
        fake.records["Account"], fake.calls, fake.last_body["collection_upsert"]
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import jwt
import requests
from requests.adapters import HTTPAdapter

from tests.fakes.tls import Handshaking, LoopbackTls

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
COLLECTION_LIMIT = 200
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


@dataclass(frozen=True)
class SObject:
    """What the fake org knows of one object type."""

    name: str
    external_ids: tuple[str, ...] = ("External_Id__c",)
    #: Fields a record may carry besides its external ids; ``None`` allows any.
    fields: frozenset[str] | None = None
    #: Fields a new record must have.
    required: tuple[str, ...] = ()
    #: Relationship name -> parent object, e.g. ``{"Account__r": "Account"}``.
    lookups: dict[str, str] = field(default_factory=dict)
    #: The first three characters of its record ids, as Salesforce's key prefixes.
    key_prefix: str = "a00"
    #: External id fields whose Unique attribute is case-sensitive; the others match "ABC" to
    #: "abc", as Salesforce's default for a unique field ("treat as duplicate values") does.
    case_sensitive: frozenset[str] = frozenset()

    def id_key(self, field_name: str, value: Any) -> Any:
        """What upserts match ``value`` of external id ``field_name`` by."""
        if field_name in self.case_sensitive or not isinstance(value, str):
            return value
        return value.casefold()


@dataclass(frozen=True)
class Credentials:
    """The one integration user and Connected App the fake org accepts."""

    username: str = "integration@example.com"
    password: str = "fake-password"
    security_token: str = "fake-token"
    consumer_key: str = "fake-consumer-key"
    consumer_secret: str = "fake-consumer-secret"
    #: PEM public key that JWT bearer assertions must be signed for; ``None`` refuses them.
    jwt_public_key: bytes | None = None
    my_domain: str = "fake-org.my"


@dataclass(frozen=True)
class Fault:
    """A forced answer to the next data request (logins are never faulted)."""

    status: int = 0
    body: Any = None
    #: Wait this long first (then answer normally when ``status`` is 0).
    delay_s: float = 0.0
    #: Close the connection without answering.
    drop: bool = False


SESSION_EXPIRED = Fault(
    401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
)
REQUEST_LIMIT_EXCEEDED = Fault(
    403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
)
#: What a proxy or Salesforce's edge answers a client sending too fast.
TOO_MANY_REQUESTS = Fault(429, "Too Many Requests")
SERVER_ERROR = Fault(
    500, [{"message": "An unexpected error occurred.", "errorCode": "UNKNOWN_EXCEPTION"}]
)
UNAVAILABLE = Fault(
    503, [{"message": "Server temporarily unavailable.", "errorCode": "SERVER_UNAVAILABLE"}]
)
DROPPED = Fault(drop=True)
#: No fault: the request is answered as usual, for a fault meant for a later request.
ANSWERED = Fault()


def slow(seconds: float) -> Fault:
    """Answer normally, but only after ``seconds``: longer than the client waits, it times out."""
    return Fault(delay_s=seconds)


class _Refusal(Exception):
    """Salesforce refuses one record: HTTP status for the single route, code for both."""

    def __init__(self, status: int, code: str, message: str, fields: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, list(fields)

    def error(self, key: str) -> dict[str, Any]:
        return {key: self.code, "message": self.message, "fields": self.fields}


class _Ambiguous(_Refusal):
    """Several records hold the external id: 300 with their URLs, or an error in a collection."""

    def __init__(self, field_name: str, ids: list[str]) -> None:
        message = f"{field_name}: more than one record found for external id field: {ids}"
        super().__init__(300, "DUPLICATE_EXTERNAL_ID", message)
        self.ids = ids


class FakeSalesforce(LoopbackTls):
    """A Salesforce org on ``https://127.0.0.1:<port>``; start it with ``with``."""

    def __init__(
        self, objects: Iterable[SObject] = (), credentials: Credentials | None = None
    ) -> None:
        self.objects = {sobject.name: sobject for sobject in objects}
        self.credentials = credentials or Credentials()
        self.records: dict[str, list[dict[str, Any]]] = {name: [] for name in self.objects}
        #: Requests by route: soap_login, oauth_token, sobject_upsert, collection_upsert.
        self.calls: Counter[str] = Counter()
        #: The decoded body of the last request on each route.
        self.last_body: dict[str, Any] = {}
        #: Data requests so far, as Sforce-Limit-Info reports them.
        self.api_used = 0
        self.api_limit = 15000
        self._faults: deque[Fault] = deque()
        #: Records by object, external id field and the key upserts match by, so that an
        #: upsert finds its record without reading them all.
        self._by_external_id: dict[tuple[str, str, Any], list[dict[str, Any]]] = defaultdict(list)
        #: Records another transaction holds, by object and external id: see :meth:`lock`.
        self._locked: set[tuple[str, Any]] = set()
        self._tokens: set[str] = set()
        self._next_id = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        super().__init__(_handler_for(self), "fake-salesforce")

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    # -- what tests use --------------------------------------------------------------------

    def client_session(self) -> requests.Session:
        """A session whose requests for ``*.salesforce.com`` reach this fake instead.

        That is where simple-salesforce logs in; trust still has to come from ``ca_path``.
        """
        session = requests.Session()
        session.mount("https://", _ToFake(self.origin))
        return session

    def env(self, mode: str, private_key_file: str | None = None) -> dict[str, str]:
        """``SALESFORCE_*`` variables for one login mode, trusting this fake's CA."""
        c = self.credentials
        per_mode = {
            "session_id": {
                "SALESFORCE_SESSION_ID": self.issue_token(),
                "SALESFORCE_INSTANCE_URL": self.origin,
            },
            "jwt_bearer": {
                "SALESFORCE_USERNAME": c.username,
                "SALESFORCE_CONSUMER_KEY": c.consumer_key,
                "SALESFORCE_PRIVATE_KEY_FILE": private_key_file or "",
            },
            "client_credentials": {
                "SALESFORCE_CONSUMER_KEY": c.consumer_key,
                "SALESFORCE_CONSUMER_SECRET": c.consumer_secret,
                "SALESFORCE_DOMAIN": c.my_domain,
            },
            "password": {
                "SALESFORCE_USERNAME": c.username,
                "SALESFORCE_PASSWORD": c.password,
                "SALESFORCE_SECURITY_TOKEN": c.security_token,
            },
        }
        return {"SALESFORCE_CA_BUNDLE": self.ca_path, **per_mode[mode]}

    def issue_token(self) -> str:
        """A new valid session id, as a login would hand out."""
        with self._lock:
            return self._new_token()

    def expire_sessions(self) -> None:
        """Invalidate every session id handed out so far."""
        with self._lock:
            self._tokens.clear()

    def fail_next(self, *faults: Fault) -> None:
        """Answer the next data requests with these, in order."""
        with self._lock:
            self._faults.extend(faults)

    def add_record(self, sobject: str, **fields: Any) -> str:
        """Store a record directly, e.g. a second one with the same external id."""
        with self._lock:
            record = {"Id": self._new_id(self.objects[sobject]), **fields}
            self._store(self.objects[sobject], record)
        return str(record["Id"])

    def lock(self, sobject: str, external_id: Any, locked: bool = True) -> None:
        """Hold a record as a long transaction in the org would: its upserts are refused with
        UNABLE_TO_LOCK_ROW until it is unlocked (``locked=False``)."""
        with self._lock:
            (self._locked.add if locked else self._locked.discard)((sobject, external_id))

    def find(self, sobject: str, field_name: str, value: Any) -> list[dict[str, Any]]:
        return [r for r in self.records[sobject] if r.get(field_name) == value]

    # -- routes ----------------------------------------------------------------------------

    def handle_post(self, path: str, headers: Any, body: bytes) -> tuple[int, Any, str]:
        """Logins: the SOAP ``login`` call and the OAuth token endpoint."""
        with self._lock:
            if path.startswith("/services/Soap/u/"):
                self.calls["soap_login"] += 1
                return self._soap_login(path.rsplit("/", 1)[-1], body)
            if path == "/services/oauth2/token":
                self.calls["oauth_token"] += 1
                return self._token(headers, parse_qs(body.decode()))
        return 404, NOT_FOUND, "application/json"

    def receive(self, path: str, body: bytes) -> tuple[Fault | None, str]:
        """Count a data request and keep its body; returns the fault to answer with, if any,
        and the ``Sforce-Limit-Info`` header every data response carries."""
        route = _Route.parse(path)
        with self._lock:
            self.api_used += 1
            if route is not None:
                self.calls[route.name] += 1
                self.last_body[route.name] = json.loads(body or b"null")
            fault = self._faults.popleft() if self._faults else None
            return fault, f"api-usage={self.api_used}/{self.api_limit}"

    def handle_patch(self, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        """Data: single-record and collection upserts, behind a valid session id."""
        route = _Route.parse(path)
        with self._lock:
            if headers.get("Authorization", "").removeprefix("Bearer ") not in self._tokens:
                return SESSION_EXPIRED.status, SESSION_EXPIRED.body
            sobject = self.objects.get(route.sobject) if route else None
            if route is None or sobject is None or route.field not in sobject.external_ids:
                return 404, NOT_FOUND
            if route.value is None:
                return self._upsert_collection(sobject, route.field, json.loads(body))
            return self._upsert_one(route, sobject, json.loads(body))

    def wait(self, seconds: float) -> bool:
        """Sleep for a slow fault; True when the fake stops meanwhile."""
        return self._stopping.wait(seconds)

    # -- logins ----------------------------------------------------------------------------

    def _soap_login(self, version: str, body: bytes) -> tuple[int, Any, str]:
        c = self.credentials
        envelope = ElementTree.fromstring(body)
        username = envelope.findtext(".//{urn:partner.soap.sforce.com}username")
        password = envelope.findtext(".//{urn:partner.soap.sforce.com}password")
        if (username, password) != (c.username, c.password + c.security_token):
            return 500, _soap_fault(), "text/xml"
        token = self._new_token()
        server_url = f"{self.origin}/services/Soap/u/{version}/00DFAKE000000001"
        return 200, _soap_login_result(server_url, token), "text/xml"

    def _token(self, headers: Any, form: dict[str, list[str]]) -> tuple[int, Any, str]:
        grant = form.get("grant_type", [""])[0]
        if grant == JWT_BEARER_GRANT and self._assertion_ok(form.get("assertion", [""])[0]):
            return self._access_token()
        if grant == "client_credentials" and self._client_ok(headers.get("Authorization", "")):
            return self._access_token()
        error = {"error": "invalid_grant", "error_description": "authentication failure"}
        return 400, error, "application/json"

    def _assertion_ok(self, assertion: str) -> bool:
        c = self.credentials
        if c.jwt_public_key is None:
            return False
        audiences = [f"https://{d}.salesforce.com" for d in ("login", "test", c.my_domain)]
        try:
            claims = jwt.decode(
                assertion, c.jwt_public_key, algorithms=["RS256"], audience=audiences
            )
        except jwt.InvalidTokenError:
            return False
        return claims.get("iss") == c.consumer_key and claims.get("sub") == c.username

    def _client_ok(self, authorization: str) -> bool:
        c = self.credentials
        expected = base64.b64encode(f"{c.consumer_key}:{c.consumer_secret}".encode()).decode()
        return authorization == f"Basic {expected}"

    def _access_token(self) -> tuple[int, Any, str]:
        answer = {
            "access_token": self._new_token(),
            "instance_url": self.origin,
            "token_type": "Bearer",
        }
        return 200, answer, "application/json"

    # -- upserts ---------------------------------------------------------------------------

    def _upsert_one(self, route: _Route, sobject: SObject, body: dict[str, Any]) -> tuple[int, Any]:
        version = route.version
        try:
            created, record_id = self._apply(sobject, route.field, route.value, body)
        except _Ambiguous as exc:
            return 300, [f"/services/data/v{version}/sobjects/{sobject.name}/{i}" for i in exc.ids]
        except _Refusal as exc:
            return exc.status, [exc.error("errorCode")]
        if not created and version < 46.0:
            return 204, None
        answer: dict[str, Any] = {"id": record_id, "success": True, "errors": []}
        if version >= 46.0:
            answer["created"] = created
        return (201 if created else 200), answer

    def _upsert_collection(
        self, sobject: SObject, field_name: str, payload: dict[str, Any]
    ) -> tuple[int, Any]:
        items = payload.get("records", [])
        if len(items) > COLLECTION_LIMIT:
            message = f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records"
            return 400, [{"errorCode": "EXCEEDED_ID_LIMIT", "message": message}]
        if payload.get("allOrNone"):
            return 400, [{"errorCode": "INVALID_INPUT", "message": "fake: allOrNone is false only"}]
        seen = Counter(sobject.id_key(field_name, item.get(field_name)) for item in items)
        return 200, [self._collection_item(sobject, field_name, item, seen) for item in items]

    def _collection_item(
        self, sobject: SObject, field_name: str, item: dict[str, Any], seen: Counter[Any]
    ) -> dict[str, Any]:
        value = item.get(field_name)
        body = {k: v for k, v in item.items() if k not in ("attributes", field_name)}
        try:
            if seen[sobject.id_key(field_name, value)] > 1:
                message = f"Duplicate external id specified: {value}"
                raise _Refusal(400, "DUPLICATE_VALUE", message, [field_name])
            created, record_id = self._apply(sobject, field_name, value, body)
        except _Refusal as exc:
            return {"success": False, "errors": [exc.error("statusCode")]}
        return {"id": record_id, "success": True, "errors": [], "created": created}

    def _apply(
        self, sobject: SObject, field_name: str, value: Any, body: dict[str, Any]
    ) -> tuple[bool, str]:
        """Create or update one record; returns (created, id) or raises the refusal."""
        values = self._resolve(sobject, body)
        matches = self._matching(sobject, field_name, value)
        if (sobject.name, value) in self._locked:
            ids = ", ".join(m["Id"] for m in matches)
            message = f"unable to obtain exclusive access to this record or 1 records: {ids}"
            raise _Refusal(400, "UNABLE_TO_LOCK_ROW", message)
        if len(matches) > 1:
            raise _Ambiguous(field_name, [m["Id"] for m in matches])
        if matches:
            self._update(sobject, matches[0], values)
            return False, matches[0]["Id"]
        missing = [name for name in sobject.required if values.get(name) in (None, "")]
        if missing:
            message = f"Required fields are missing: [{', '.join(missing)}]"
            raise _Refusal(400, "REQUIRED_FIELD_MISSING", message, missing)
        record = {"Id": self._new_id(sobject), field_name: value, **values}
        self._store(sobject, record)
        return True, record["Id"]

    def _resolve(self, sobject: SObject, body: dict[str, Any]) -> dict[str, Any]:
        """Check the fields and turn relationships by external id into the parent's id."""
        values: dict[str, Any] = {}
        for name, value in body.items():
            if isinstance(value, dict) and name in sobject.lookups:
                id_field = name[:-3] + "__c" if name.endswith("__r") else name + "Id"
                values[id_field] = self._parent_id(sobject.lookups[name], value)
            elif isinstance(value, dict) or not _allowed(sobject, name):
                message = f"No such column '{name}' on sobject of type {sobject.name}"
                raise _Refusal(400, "INVALID_FIELD", message)
            else:
                values[name] = value
        return values

    def _parent_id(self, parent: str, reference: dict[str, Any]) -> str:
        (field_name, value), *_ = reference.items()
        matches = self._matching(self.objects[parent], field_name, value)
        if not matches:
            message = (
                f"Foreign key external ID: {value} not found for field {field_name} "
                f"in entity {parent}"
            )
            raise _Refusal(400, "INVALID_FIELD", message)
        return str(matches[0]["Id"])

    def _matching(self, sobject: SObject, field_name: str, value: Any) -> list[dict[str, Any]]:
        """The records an upsert or a relationship by this external id value reaches."""
        if field_name not in sobject.external_ids:
            return self.find(sobject.name, field_name, value)
        return list(self._by_external_id[self._id_entry(sobject, field_name, value)])

    def _store(self, sobject: SObject, record: dict[str, Any]) -> None:
        self.records[sobject.name].append(record)
        for name in sobject.external_ids:
            self._by_external_id[self._id_entry(sobject, name, record.get(name))].append(record)

    def _update(self, sobject: SObject, record: dict[str, Any], values: dict[str, Any]) -> None:
        """Update a record, moving it in the index when one of its external ids changes."""
        for name in sobject.external_ids:
            if name in values:
                self._by_external_id[self._id_entry(sobject, name, record.get(name))].remove(record)
                self._by_external_id[self._id_entry(sobject, name, values[name])].append(record)
        record.update(values)

    @staticmethod
    def _id_entry(sobject: SObject, field_name: str, value: Any) -> tuple[str, str, Any]:
        return (sobject.name, field_name, sobject.id_key(field_name, value))

    def _new_token(self) -> str:
        token = "00DFAKE!" + secrets.token_urlsafe(24)
        self._tokens.add(token)
        return token

    def _new_id(self, sobject: SObject) -> str:
        self._next_id += 1
        return f"{sobject.key_prefix}{self._next_id:012d}AAA"


def _allowed(sobject: SObject, name: str) -> bool:
    return sobject.fields is None or name in sobject.fields or name in sobject.external_ids


def _soap_login_result(server_url: str, session_id: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns="urn:partner.soap.sforce.com">'
        "<soapenv:Body><loginResponse><result>"
        "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{escape(server_url)}</serverUrl><sessionId>{escape(session_id)}</sessionId>"
        "<userId>005FAKE000000001AAA</userId>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )


def _soap_fault() -> str:
    message = "Invalid username, password, security token; or user locked out."
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:sf="urn:fault.partner.soap.sforce.com"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode>"
        f"<faultstring>INVALID_LOGIN: {message}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"
        f"<sf:exceptionMessage>{message}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


def _handler_for(fake: FakeSalesforce) -> type[BaseHTTPRequestHandler]:
    class Handler(Handshaking):
        def do_POST(self) -> None:
            status, body, content_type = fake.handle_post(self.path, self.headers, self._body())
            self._reply(status, body, {"Content-Type": content_type})

        def do_PATCH(self) -> None:
            body = self._body()
            fault, usage = fake.receive(self.path, body)
            if fault is not None and (fault.drop or fake.wait(fault.delay_s)):
                return  # dropped, or the fake is stopping: close without an answer
            if fault is not None and fault.status:
                status, answer = fault.status, fault.body
            else:
                status, answer = fake.handle_patch(self.path, self.headers, body)
            self._reply(status, answer, {"Sforce-Limit-Info": usage})

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reply(self, status: int, body: Any, headers: dict[str, str]) -> None:
            data = b"" if body is None else _encode(body)
            self.send_response(status)
            headers.setdefault("Content-Type", "application/json;charset=UTF-8")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _encode(body: Any) -> bytes:
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


class _Route(NamedTuple):
    """A data request's route, from its URL-escaped path."""

    name: str
    version: float
    sobject: str
    field: str
    #: The external id of a single-record upsert; ``None`` for a collection.
    value: str | None

    @classmethod
    def parse(cls, path: str) -> _Route | None:
        parts = [unquote(part) for part in urlsplit(path).path.split("/")]
        match parts:
            case ["", "services", "data", version, "sobjects", sobject, field_name, value]:
                return cls("sobject_upsert", float(version[1:]), sobject, field_name, value)
            case ["", "services", "data", version, "composite", "sobjects", sobject, field_name]:
                return cls("collection_upsert", float(version[1:]), sobject, field_name, None)
        return None


class _ToFake(HTTPAdapter):
    """Sends requests for ``*.salesforce.com`` to the fake: network redirection, no mocking."""

    def __init__(self, origin: str) -> None:
        super().__init__()
        self._netloc = urlsplit(origin).netloc

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url or "")
        if (parts.hostname or "").endswith(".salesforce.com"):
            request.url = urlunsplit(parts._replace(netloc=self._netloc))
        return super().send(request, *args, **kwargs)
