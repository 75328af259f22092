"""Settings: defaults, then the environment (and an optional ``.env``), then test overrides."""

from __future__ import annotations

import math
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from cryptography.fernet import Fernet
from dotenv import dotenv_values

from gateway.errors import ConfigurationError
from gateway.target_limits import TargetLimits, parse_limits
from gateway.target_names import TARGET_NAMES, is_target_name

MiB = 1024 * 1024
LOG_FORMATS = ("text", "json")
#: An admin token shorter than this is warned about at start-up (the generated one has 43).
MIN_ADMIN_TOKEN_LENGTH = 16
#: The longest a sign-in refusal may last: a longer one would lock admins out for days.
MAX_SIGN_IN_WINDOW_S = 86400.0
N = TypeVar("N", int, float)


@dataclass(frozen=True, kw_only=True)
class Variable:
    """One environment variable, declared once: the code reads it through its declaration and
    ``python -m gateway.reference`` lists it in docs/configuration.md.

    ``default`` and ``allowed`` are as a reader should see them, Markdown included.
    """

    name: str
    kind: str
    default: str
    allowed: str
    description: str

    def documented(self) -> Variable:
        """The variable as docs/configuration.md shows it: as declared."""
        return self


@dataclass(frozen=True, kw_only=True)
class Number(Generic[N]):
    """A numeric variable: the type of its default, bounds checked when it is read.

    A value out of range is refused at startup, naming the variable, rather than meaning
    something nobody asked for later (a body limit of 0 refusing every delivery, a poll of 0
    spinning the CPU).
    """

    name: str
    default: N
    minimum: N
    #: True when ``minimum`` itself is refused (a timeout of 0 would never wait).
    above: bool = False
    maximum: N | None = None
    description: str
    #: How the documentation shows the default when it means "not set" rather than a value.
    unset: str | None = None

    def read(self, env: Mapping[str, str]) -> N:
        """``env[name]`` as the type of the default, or the default when unset or empty."""
        raw = env.get(self.name)
        if raw is None or raw == "":
            return self.default
        kind = "a whole number" if isinstance(self.default, int) else "a number"
        try:
            value = type(self.default)(raw)
        except ValueError:
            raise ConfigurationError(f"{self.name} must be {kind}, not {raw!r}") from None
        if not math.isfinite(value):
            raise ConfigurationError(f"{self.name} must be {kind}, not {raw!r}")
        if value < self.minimum or (self.above and value == self.minimum):
            raise ConfigurationError(f"{self.name} must be {self._lower_bound()}, not {raw!r}")
        if self.maximum is not None and value > self.maximum:
            raise ConfigurationError(f"{self.name} must be at most {self.maximum:g}, not {raw!r}")
        return value

    def _lower_bound(self) -> str:
        return f"more than {self.minimum:g}" if self.above else f"at least {self.minimum:g}"

    def documented(self) -> Variable:
        """The variable as docs/configuration.md shows it."""
        whole = isinstance(self.default, int)
        if self.maximum is None:
            allowed = f"more than {self.minimum:g}" if self.above else f"{self.minimum:g} or more"
        elif self.above:
            allowed = f"more than {self.minimum:g} and at most {self.maximum:g}"
        else:
            allowed = f"{self.minimum:g} to {self.maximum:g}"
        return Variable(
            name=self.name,
            kind="whole number" if whole else "seconds",
            default=self.unset or f"`{self.default if whole else f'{self.default:g}'}`",
            allowed=allowed,
            description=self.description,
        )


@dataclass(frozen=True, kw_only=True)
class Choice:
    """A variable that takes one of a few words."""

    name: str
    choices: tuple[str, ...]
    description: str

    def read(self, env: Mapping[str, str]) -> str:
        """``env[name]``, or the first choice when unset or empty."""
        value = env.get(self.name) or self.choices[0]
        if value not in self.choices:
            allowed = f"{', '.join(self.choices[:-1])} or {self.choices[-1]}"
            raise ConfigurationError(f"{self.name} must be {allowed}, not {value!r}")
        return value

    def documented(self) -> Variable:
        """The variable as docs/configuration.md shows it."""
        return Variable(
            name=self.name,
            kind="choice",
            default=f"`{self.choices[0]}`",
            allowed=", ".join(f"`{choice}`" for choice in self.choices),
            description=self.description,
        )


DATABASE_URL = Variable(
    name="GATEWAY_DATABASE_URL",
    kind="URL",
    default="`sqlite:///instance/gateway.db`",
    allowed="`sqlite:///PATH`, `postgresql+psycopg://…` (`postgres://` and `postgresql://`, as"
    " platforms hand them out, mean the same); options are libpq's (`?sslmode=require`), an"
    " unknown one is refused at start",
    description="SQLite file, or `postgresql+psycopg://user:pass@host/db`",
)
INSTANCE_PATH = Variable(
    name="GATEWAY_INSTANCE_PATH",
    kind="directory",
    default="`instance`",
    allowed="a directory the gateway may create and write",
    description="where the SQLite database and the generated token and key live",
)
PUBLIC_URL = Variable(
    name="GATEWAY_PUBLIC_URL",
    kind="URL",
    default="`http://` and the address in `GATEWAY_BIND` (`127.0.0.1` for `0.0.0.0`)",
    allowed="an `http://` or `https://` URL (`https://` also marks the console's cookie `Secure`)",
    description="base of the callback URLs handed to providers: set it to the address"
    " providers reach",
)
ADMIN_TOKEN = Variable(
    name="GATEWAY_ADMIN_TOKEN",
    kind="text",
    default="generated into `instance/admin-token` (43 random characters)",
    allowed=f"at least {MIN_ADMIN_TOKEN_LENGTH} characters, no blanks around it (anything else"
    " is still used, with a warning)",
    description="bearer token of the admin API and the console's sign-in; when the web server"
    f" starts, one shorter than {MIN_ADMIN_TOKEN_LENGTH} characters (easy to guess) or beginning"
    " or ending with blanks (which never match: what is given is stripped) gets a warning line"
    " naming this variable",
)
SECRET_KEY = Variable(
    name="GATEWAY_SECRET_KEY",
    kind="text",
    default="generated into `instance/secret-key`",
    allowed="any non-empty text",
    description="key encrypting stored secrets (and signing list cursors and console cookies):"
    " a Fernet key (`python -c 'from cryptography.fernet import Fernet;"
    " print(Fernet.generate_key().decode())'`) is used as it is, any other text is stretched"
    " into one with HKDF-SHA256, so give a long random value rather than a memorable"
    " passphrase; stored secrets cannot be decrypted once it changes",
)
MAX_BODY_BYTES = Number(
    name="GATEWAY_MAX_BODY_BYTES",
    default=MiB,
    minimum=1,
    description="larger deliveries get 413 before they are read; admin API bodies get 413 past"
    " four times this",
)
MAX_HEADER_BYTES = Number(
    name="GATEWAY_MAX_HEADER_BYTES",
    default=16 * 1024,
    minimum=1,
    description="deliveries whose headers are larger in all get 400 `headers_too_large`;"
    " whatever this says, one header line over 32 KiB, more than 200 headers or a request line"
    " over 8 KiB are refused by the server first (431, 414)",
)
REFUSED_PER_MINUTE = Number(
    name="GATEWAY_REFUSED_PER_MINUTE",
    default=60,
    minimum=0,
    description="refused deliveries (401, 400) that no signature vouches for are recorded up to"
    " this many per group and minute; the rest are only counted"
    " (`gateway_refusals_unrecorded_total`)",
)
COMMIT_TIMEOUT_S = Number(
    name="GATEWAY_COMMIT_TIMEOUT_S",
    default=4.0,
    minimum=0.0,
    above=True,
    description="a delivery not durably stored by then gets 503, before the sender's own"
    " timeout (5 s or less for most senders)",
)
INBOX_MAX_BATCH = Number(
    name="GATEWAY_INBOX_MAX_BATCH",
    default=128,
    minimum=1,
    description="deliveries stored in one transaction at most (group commit)",
)
TARGET = Variable(
    name="GATEWAY_TARGET",
    kind="target name",
    default="`local`",
    allowed="`local`, `salesforce`, `salesforce:<profile>`, `http`, `http:<profile>` (letters,"
    " digits, `_`)",
    description="where records go; a group's `target` overrides it ([Salesforce](salesforce.md),"
    " [HTTP](targets.md))",
)
TARGET_LIMITS = Variable(
    name="GATEWAY_TARGET_LIMITS",
    kind="limits",
    default="none",
    allowed="`<target>=<N>/s,<N>/day` entries separated by `;`, either limit optional, e.g."
    " `salesforce=10/s,100000/day;http:crm=5/s`",
    description="calls (upserts sent) each target takes a second and a UTC day, counted in the"
    " database for all workers; events over a limit wait as `pending` ([limits](targets.md))",
)
BIND = Variable(
    name="GATEWAY_BIND",
    kind="host:port",
    default="`127.0.0.1:8000`, or `0.0.0.0:$PORT` when `PORT` is set",
    allowed="`host:port` (gunicorn's forms: several comma-separated, `unix:PATH`)",
    description="where `gateway serve`, `gateway run` and `gunicorn wsgi:app` listen",
)
PORT = Number(
    name="PORT",
    default=0,
    minimum=1,
    maximum=65535,
    unset="unset",
    description="the port a platform running the `Procfile` assigns; used only when"
    " `GATEWAY_BIND` is unset",
)
WEB_WORKERS = Number(
    name="GATEWAY_WEB_WORKERS",
    default=2,
    minimum=1,
    description="gunicorn (gevent) processes",
)
WEB_CONNECTIONS = Number(
    name="GATEWAY_WEB_CONNECTIONS",
    default=16,
    minimum=1,
    description="connections each gunicorn process serves at once",
)
BODY_TIMEOUT_S = Number(
    name="GATEWAY_BODY_TIMEOUT_S",
    default=10.0,
    minimum=0.0,
    above=True,
    description="the longest a request body may take to arrive, whether it is read or"
    " discarded after an early answer; a slower one is cut off with 408",
)
BODY_MIN_RATE = Number(
    name="GATEWAY_BODY_MIN_RATE",
    default=1024,
    minimum=0,
    description="bytes a second a request body must average once its first 2 seconds have"
    " passed (0: no minimum)",
)
TRUSTED_PROXIES = Number(
    name="GATEWAY_TRUSTED_PROXIES",
    default=0,
    minimum=0,
    description="reverse proxies in front whose `X-Forwarded-For` entries are believed: the"
    " client's address (sign-in limit, logs, each delivery's `remote_addr`) is the one the"
    " outermost of them saw; set it only when every request comes through them",
)
WORKER_BATCH_SIZE = Number(
    name="GATEWAY_WORKER_BATCH_SIZE",
    default=1000,
    minimum=1,
    description="events a worker claims at once",
)
WORKER_POLL_S = Number(
    name="GATEWAY_WORKER_POLL_S",
    default=0.5,
    minimum=0.0,
    above=True,
    description="how long an idle worker waits before looking for due events again",
)
BATCH_WINDOW_S = Number(
    name="GATEWAY_BATCH_WINDOW_S",
    default=0.5,
    minimum=0.0,
    description="how long a worker waits for a burst to fill a batch (fewer CRM calls)",
)
CLAIM_TIMEOUT_S = Number(
    name="GATEWAY_CLAIM_TIMEOUT_S",
    default=120.0,
    minimum=0.0,
    above=True,
    description="a dead worker's claims are taken over after this",
)
MAX_ATTEMPTS = Number(
    name="GATEWAY_MAX_ATTEMPTS",
    default=22,
    minimum=1,
    description="attempts an event gets before it is `dead`; with the default delays the"
    " schedule spans 26 to 52 hours, so a target's outage of a day costs no event",
)
RETRY_BASE_S = Number(
    name="GATEWAY_RETRY_BASE_S",
    default=30.0,
    minimum=0.0,
    description="exponential backoff: the first retry waits up to this, each next one twice as"
    " long, with jitter (half to all of it)",
)
RETRY_MAX_S = Number(
    name="GATEWAY_RETRY_MAX_S",
    default=14400.0,
    minimum=0.0,
    description="exponential backoff: the longest a retry waits",
)
RETENTION_DAYS = Number(
    name="GATEWAY_RETENTION_DAYS",
    default=30,
    minimum=0,
    description="`gateway events purge` removes delivered events older than this",
)
LOG_FORMAT = Choice(
    name="GATEWAY_LOG_FORMAT",
    choices=LOG_FORMATS,
    description="`json` for structured logs, gunicorn's own lines included",
)
SIGN_IN_ATTEMPTS = Number(
    name="GATEWAY_SIGN_IN_ATTEMPTS",
    default=5,
    minimum=1,
    description="console sign-ins one client address may get wrong within"
    " `GATEWAY_SIGN_IN_WINDOW_S` before its sign-ins are refused for the rest of it"
    " ([Signing in](console.md#signing-in))",
)
SIGN_IN_WINDOW_S = Number(
    name="GATEWAY_SIGN_IN_WINDOW_S",
    default=300.0,
    minimum=0.0,
    above=True,
    maximum=MAX_SIGN_IN_WINDOW_S,
    description="the window of `GATEWAY_SIGN_IN_ATTEMPTS`, which opens at the first wrong sign-in",
)
OAUTH_TOKEN_TTL_S = Number(
    name="GATEWAY_OAUTH_TOKEN_TTL_S",
    default=3600,
    minimum=60,
    maximum=86400,
    description="how long an access token from `POST /oauth/token` is good for, in whole"
    " seconds (its `expires_in`)"
    " ([OAuth 2.0 on the callback URL](connectors.md#oauth-20-on-the-callback-url))",
)
OAUTH_TOKEN_ATTEMPTS = Number(
    name="GATEWAY_OAUTH_TOKEN_ATTEMPTS",
    default=20,
    minimum=1,
    description="token requests one client address may make without one succeeding within"
    " `GATEWAY_SIGN_IN_WINDOW_S`, before its requests get 429 for the rest of it",
)
METRICS_TOKEN = Variable(
    name="GATEWAY_METRICS_TOKEN",
    kind="text",
    default="unset: `/metrics` is open",
    allowed="any non-empty text",
    description="when set, `/metrics` (and a worker's `GATEWAY_WORKER_METRICS_BIND`) answers"
    " only scrapes with `Authorization: Bearer <token>`, 401 to others"
    " ([Metrics](operations.md#metrics))",
)
WORKER_METRICS_BIND = Variable(
    name="GATEWAY_WORKER_METRICS_BIND",
    kind="host:port",
    default="unset: no port of its own",
    allowed="`host:port` (port 0: any free one, logged at start)",
    description="where `gateway worker` serves its own counters at `/metrics`, for workers on"
    " hosts without a web process; workers beside one share its `PROMETHEUS_MULTIPROC_DIR`"
    " instead ([Metrics](operations.md#metrics))",
)

#: Every variable, in the order docs/configuration.md lists them.
VARIABLES: tuple[Variable | Number[int] | Number[float] | Choice, ...] = (
    DATABASE_URL,
    INSTANCE_PATH,
    PUBLIC_URL,
    ADMIN_TOKEN,
    SECRET_KEY,
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    REFUSED_PER_MINUTE,
    COMMIT_TIMEOUT_S,
    INBOX_MAX_BATCH,
    TARGET,
    TARGET_LIMITS,
    BIND,
    PORT,
    WEB_WORKERS,
    WEB_CONNECTIONS,
    BODY_TIMEOUT_S,
    BODY_MIN_RATE,
    WORKER_BATCH_SIZE,
    WORKER_POLL_S,
    BATCH_WINDOW_S,
    CLAIM_TIMEOUT_S,
    MAX_ATTEMPTS,
    RETRY_BASE_S,
    RETRY_MAX_S,
    RETENTION_DAYS,
    LOG_FORMAT,
    SIGN_IN_ATTEMPTS,
    SIGN_IN_WINDOW_S,
    OAUTH_TOKEN_TTL_S,
    OAUTH_TOKEN_ATTEMPTS,
    TRUSTED_PROXIES,
    METRICS_TOKEN,
    WORKER_METRICS_BIND,
)


def _target_limits(env: Mapping[str, str]) -> dict[str, TargetLimits]:
    try:
        return parse_limits(env.get(TARGET_LIMITS.name) or "")
    except ValueError as exc:
        raise ConfigurationError(f"{TARGET_LIMITS.name}: {exc}") from None


def _host_and_port(env: Mapping[str, str], variable: Variable) -> tuple[str, int] | None:
    """A ``host:port`` variable as (host, port); None when unset."""
    raw = env.get(variable.name)
    if not raw:
        return None
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ConfigurationError(
            f"{variable.name} must be host:port (as 127.0.0.1:9101), not {raw!r}"
        )
    return host.strip("[]"), int(port)


def _target(env: Mapping[str, str]) -> str:
    """``GATEWAY_TARGET``, refused unless the target registry can open a target of that name."""
    value = env.get(TARGET.name) or "local"
    if not is_target_name(value):
        raise ConfigurationError(f"GATEWAY_TARGET must be {TARGET_NAMES}, not {value!r}")
    return value


#: Database URL schemes the gateway has drivers and migrations for.
DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
#: PostgreSQL without a driver named, as platforms hand URLs out: psycopg 3 is the one shipped.
POSTGRESQL_SPELLINGS = ("postgres", "postgresql")
#: PostgreSQL drivers the gateway does not ship.
OTHER_POSTGRESQL_DRIVERS = ("postgresql+psycopg2", "postgresql+asyncpg", "postgresql+pg8000")
DATABASE_URL_FORMS = "sqlite:///PATH and postgresql+psycopg://user:password@host/db"


def _database_url(env: Mapping[str, str], instance: Path) -> str:
    """``GATEWAY_DATABASE_URL``, refused unless it names a database the gateway can drive.

    The URL's text is never repeated in a message: it may hold a password.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = env.get(DATABASE_URL.name) or f"sqlite:///{instance / 'gateway.db'}"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            f"GATEWAY_DATABASE_URL cannot be read as a database URL; use {DATABASE_URL_FORMS}"
        ) from None
    scheme = parsed.drivername
    if scheme in (*POSTGRESQL_SPELLINGS, "postgresql+psycopg"):
        _check_connection_options(parsed.query)
    if scheme in POSTGRESQL_SPELLINGS:
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if scheme in OTHER_POSTGRESQL_DRIVERS:
        raise ConfigurationError(
            f"GATEWAY_DATABASE_URL names {scheme}://; use postgresql+psycopg://"
            " for PostgreSQL (the psycopg 3 driver the gateway ships with)"
        )
    if scheme not in DATABASE_SCHEMES:
        raise ConfigurationError(
            f"GATEWAY_DATABASE_URL names {scheme}://; only {DATABASE_URL_FORMS} are supported"
        )
    return url


def _check_connection_options(query: Mapping[str, str | tuple[str, ...]]) -> None:
    """Refuse a PostgreSQL URL option libpq does not know, which would otherwise fail every
    connection with a traceback; libpq's message names the option, never a value."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import make_conninfo

    try:
        make_conninfo("", **{name: "" for name in query})
    except ProgrammingError as exc:
        raise ConfigurationError(
            f"GATEWAY_DATABASE_URL has an {str(exc).strip()} (see libpq's connection parameters)"
        ) from None


@dataclass(frozen=True)
class Settings:
    """Everything the gateway reads from its environment, in one immutable value."""

    instance_path: Path
    database_url: str
    public_url: str = "http://127.0.0.1:8000"
    admin_token: str | None = None
    secret_key: str | None = None
    #: Where ``secret_key`` was read from, for the messages that concern it.
    secret_key_source: str = "GATEWAY_SECRET_KEY"
    max_body_bytes: int = MAX_BODY_BYTES.default
    max_header_bytes: int = MAX_HEADER_BYTES.default
    #: Unverified refusals recorded per group and minute.
    refused_per_minute: int = REFUSED_PER_MINUTE.default
    target: str = "local"
    #: Calls a second and a day each target takes, by target name.
    target_limits: Mapping[str, TargetLimits] = field(default_factory=dict)
    log_format: str = "text"
    #: Deliveries written in one transaction at most (group commit).
    inbox_max_batch: int = INBOX_MAX_BATCH.default
    #: How long a delivery waits for its commit before the sender is told 503 to retry later;
    #: shorter than senders' own timeouts (5 s or less), or the 503 reaches nobody.
    commit_timeout_s: float = COMMIT_TIMEOUT_S.default
    worker_batch_size: int = WORKER_BATCH_SIZE.default
    worker_poll_s: float = WORKER_POLL_S.default
    #: How long a worker's claim on a batch lasts before others may take it over.
    claim_timeout_s: float = CLAIM_TIMEOUT_S.default
    max_attempts: int = MAX_ATTEMPTS.default
    retry_base_s: float = RETRY_BASE_S.default
    retry_max_s: float = RETRY_MAX_S.default
    #: How long the worker waits for a burst to fill a batch before processing it.
    batch_window_s: float = BATCH_WINDOW_S.default
    retention_days: int = RETENTION_DAYS.default
    #: Console sign-ins one client address may try within ``sign_in_window_s`` without one
    #: succeeding; past them, its sign-ins are refused until that window has passed.
    sign_in_attempts: int = SIGN_IN_ATTEMPTS.default
    sign_in_window_s: float = SIGN_IN_WINDOW_S.default
    oauth_token_ttl_s: int = OAUTH_TOKEN_TTL_S.default
    #: Token requests one client address may make within ``sign_in_window_s`` without one
    #: succeeding.
    oauth_token_attempts: int = OAUTH_TOKEN_ATTEMPTS.default
    #: Reverse proxies in front of the web processes whose X-Forwarded-For entries are believed:
    #: the client's address is the one the outermost of them saw (0: the connection's peer).
    trusted_proxies: int = TRUSTED_PROXIES.default
    #: The bearer token scrapes of /metrics need; None: none is needed.
    metrics_token: str | None = field(default=None, repr=False)
    #: Where a worker serves its own metrics: (host, port), or None for nowhere.
    worker_metrics_bind: tuple[str, int] | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, instance_path: Path | None = None
    ) -> Settings:
        """Read settings from ``env`` (default: :func:`environment`).

        Raises ConfigurationError, naming the variable, for a value the gateway cannot use.
        """
        if env is None:
            env = environment()
        instance = Path(env.get(INSTANCE_PATH.name) or instance_path or "instance").resolve()
        return cls(
            instance_path=instance,
            database_url=_database_url(env, instance),
            public_url=(env.get(PUBLIC_URL.name) or _served_url(env)).rstrip("/"),
            admin_token=env.get(ADMIN_TOKEN.name) or None,
            secret_key=env.get(SECRET_KEY.name) or None,
            max_body_bytes=MAX_BODY_BYTES.read(env),
            max_header_bytes=MAX_HEADER_BYTES.read(env),
            refused_per_minute=REFUSED_PER_MINUTE.read(env),
            target=_target(env),
            target_limits=_target_limits(env),
            log_format=LOG_FORMAT.read(env),
            inbox_max_batch=INBOX_MAX_BATCH.read(env),
            commit_timeout_s=COMMIT_TIMEOUT_S.read(env),
            worker_batch_size=WORKER_BATCH_SIZE.read(env),
            worker_poll_s=WORKER_POLL_S.read(env),
            claim_timeout_s=CLAIM_TIMEOUT_S.read(env),
            max_attempts=MAX_ATTEMPTS.read(env),
            retry_base_s=RETRY_BASE_S.read(env),
            retry_max_s=RETRY_MAX_S.read(env),
            batch_window_s=BATCH_WINDOW_S.read(env),
            retention_days=RETENTION_DAYS.read(env),
            sign_in_attempts=SIGN_IN_ATTEMPTS.read(env),
            sign_in_window_s=SIGN_IN_WINDOW_S.read(env),
            oauth_token_ttl_s=OAUTH_TOKEN_TTL_S.read(env),
            oauth_token_attempts=OAUTH_TOKEN_ATTEMPTS.read(env),
            trusted_proxies=TRUSTED_PROXIES.read(env),
            metrics_token=env.get(METRICS_TOKEN.name) or None,
            worker_metrics_bind=_host_and_port(env, WORKER_METRICS_BIND),
            env=dict(env),
        )

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with some fields replaced (tests, CLI flags)."""
        return replace(self, **overrides)

    def ensure_instance_secrets(self) -> Settings:
        """Fill a missing admin token and encryption key from files under ``instance/``.

        The embedded default must run with no configuration at all, and restarts must keep the
        same token and key, so both are generated once and kept beside the database.
        """
        try:
            self.instance_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"GATEWAY_INSTANCE_PATH: cannot create the directory {self.instance_path}:"
                f" {exc.strerror}"
            ) from exc
        token = self.admin_token or _read_or_create(
            self.instance_path / "admin-token",
            lambda: secrets.token_urlsafe(32),
            "GATEWAY_ADMIN_TOKEN",
        )
        if self.secret_key:
            return replace(self, admin_token=token)
        key_file = self.instance_path / "secret-key"
        key = _read_or_create(
            key_file, lambda: Fernet.generate_key().decode(), "GATEWAY_SECRET_KEY"
        )
        source = f"{key_file} (GATEWAY_SECRET_KEY is not set)"
        return replace(self, admin_token=token, secret_key=key, secret_key_source=source)


@dataclass(frozen=True)
class ServerSettings:
    """What gunicorn reads: where to listen, how many processes, and connections each serves.

    Apart from :class:`Settings` because gunicorn's master reads them, and it should not load
    what only the application needs.
    """

    bind: str = "127.0.0.1:8000"
    workers: int = WEB_WORKERS.default
    connections: int = WEB_CONNECTIONS.default
    #: gunicorn's own lines (starting, booting workers, errors) follow the gateway's format.
    log_format: str = "text"
    #: The longest a request body may take to arrive, whether it is read or discarded.
    body_timeout_s: float = BODY_TIMEOUT_S.default
    #: Bytes a second a request body must arrive at, on average, once its first
    #: ``BODY_GRACE_S`` have passed; 0: no minimum, the timeout alone.
    body_min_rate: int = BODY_MIN_RATE.default

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerSettings:
        """Read ``GATEWAY_BIND`` (or ``PORT``) and ``GATEWAY_WEB_*`` from ``env``.

        Raises ConfigurationError, naming the variable, for a value gunicorn cannot use.
        """
        if env is None:
            env = environment()
        return cls(
            bind=_bind(env),
            workers=WEB_WORKERS.read(env),
            connections=WEB_CONNECTIONS.read(env),
            log_format=LOG_FORMAT.read(env),
            body_timeout_s=BODY_TIMEOUT_S.read(env),
            body_min_rate=BODY_MIN_RATE.read(env),
        )


def _bind(env: Mapping[str, str]) -> str:
    """``GATEWAY_BIND``; else every interface on ``PORT`` where a platform sets one; else loopback.

    Platforms that run the Procfile (Heroku and its likes) say which port to serve on in
    ``PORT`` and route to it from outside, so loopback would be unreachable there.
    """
    if env.get(BIND.name):
        return env[BIND.name]
    port = PORT.read(env)
    return f"0.0.0.0:{port}" if port else ServerSettings.bind


#: Hosts that mean every interface, and the loopback address that reaches them from here.
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}


def _served_url(env: Mapping[str, str]) -> str:
    """Where this host serves (``GATEWAY_BIND`` or ``PORT``), as a URL: callback URLs then work
    on another port without GATEWAY_PUBLIC_URL. A unix socket has no URL: the default one."""
    bind = _bind(env).split(",")[0].strip()  # gunicorn takes several, comma-separated
    if bind.startswith(("unix:", "fd://")):
        return Settings.public_url
    host, colon, port = bind.rpartition(":")
    if not colon or host.endswith(":"):  # no port (a bare host or IPv6 address): gunicorn's
        host, port = bind, "8000"
    return f"http://{_WILDCARD_HOSTS.get(host, host)}:{port}"


#: The prefix of the metrics directories the gateway makes itself, and so removes at exit.
METRICS_DIR_PREFIX = "gateway-metrics-"


def share_metrics_dir() -> None:
    """Give this process and those it starts one prometheus-client multiprocess directory,
    unless the environment names one: every process's counters are summed at each scrape.

    Before prometheus-client is imported: it reads ``PROMETHEUS_MULTIPROC_DIR`` once, then.
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX)


def admin_token_warning(token: str | None) -> str | None:
    """What is wrong with a configured admin token, if anything.

    Only warned about, never refused: existing installations and their scripts use short
    tokens, and a gateway that stopped starting after an upgrade would be worse.
    """
    if not token:
        return None
    problems = []
    if token != token.strip():
        problems.append(
            "begins or ends with blanks, which the console and the admin API strip from the"
            " token they are given, so it never matches"
        )
    if len(token.strip()) < MIN_ADMIN_TOKEN_LENGTH:
        problems.append(
            f"is shorter than {MIN_ADMIN_TOKEN_LENGTH} characters, which makes it easy to guess"
        )
    if not problems:
        return None
    return (
        f"GATEWAY_ADMIN_TOKEN {' and '.join(problems)}; use at least {MIN_ADMIN_TOKEN_LENGTH}"
        " random characters, such as python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )


def environment() -> dict[str, str]:
    """The environment the gateway is configured by: ``.env``, overlaid by the process's own.

    An empty value counts as unset (docs/configuration.md), so an empty variable of the process
    leaves the same one in ``.env`` in force rather than blanking it; with none there, it stays
    empty (``SALESFORCE_SECURITY_TOKEN=`` says the org needs no token).
    """
    dotenv = _dotenv()
    own = {name: value for name, value in os.environ.items() if value or name not in dotenv}
    return {**dotenv, **own}


def _dotenv() -> dict[str, str]:
    path = Path(".env")
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _read_or_create(path: Path, make: Callable[[], str], variable: str) -> str:
    """Create ``path`` with a fresh value unless another process already did; return its value.

    ``variable`` is the setting that makes the file unnecessary, for the messages.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_created(path, variable)
    except OSError as exc:
        raise ConfigurationError(
            f"GATEWAY_INSTANCE_PATH: cannot create {path}: {exc.strerror}"
        ) from exc
    value = make()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def _read_created(path: Path, variable: str) -> str:
    """The value another process wrote into ``path``, once it has (it may be writing it now)."""
    for _ in range(50):
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
        if value:
            return value
        time.sleep(0.01)
    raise ConfigurationError(
        f"{path} is empty; delete it to have a new one generated, or set {variable}"
    )
