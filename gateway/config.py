"""Settings: defaults, then the environment (and an optional ``.env``), then test overrides."""

from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from cryptography.fernet import Fernet
from dotenv import dotenv_values

from gateway.errors import ConfigurationError

MiB = 1024 * 1024
LOG_FORMATS = ("text", "json")
#: An admin token shorter than this is warned about at start-up (the generated one has 43).
MIN_ADMIN_TOKEN_LENGTH = 16
#: The longest a sign-in refusal may last: a longer one would lock admins out for days.
MAX_SIGN_IN_WINDOW_S = 86400.0
N = TypeVar("N", int, float)


def _number(
    env: Mapping[str, str],
    name: str,
    default: N,
    minimum: N,
    *,
    above: bool = False,
    maximum: N | None = None,
) -> N:
    """``env[name]`` as the type of ``default``, at least ``minimum`` (or ``above`` it).

    A value out of range is refused at startup, naming the variable, rather than meaning
    something nobody asked for later (a body limit of 0 refusing every delivery, a poll of 0
    spinning the CPU).
    """
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    kind = "a whole number" if isinstance(default, int) else "a number"
    try:
        value = type(default)(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be {kind}, not {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigurationError(f"{name} must be {kind}, not {raw!r}")
    if value < minimum or (above and value == minimum):
        bound = f"more than {minimum:g}" if above else f"at least {minimum:g}"
        raise ConfigurationError(f"{name} must be {bound}, not {raw!r}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be at most {maximum:g}, not {raw!r}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in choices:
        allowed = f"{', '.join(choices[:-1])} or {choices[-1]}"
        raise ConfigurationError(f"{name} must be {allowed}, not {value!r}")
    return value


def _target(env: Mapping[str, str]) -> str:
    """``GATEWAY_TARGET``, refused unless the target registry can open a target of that name."""
    from gateway.targets import TARGET_NAMES, is_target_name

    value = env.get("GATEWAY_TARGET") or "local"
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

    url = env.get("GATEWAY_DATABASE_URL") or f"sqlite:///{instance / 'gateway.db'}"
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
    max_body_bytes: int = MiB
    max_header_bytes: int = 16 * 1024
    target: str = "local"
    log_format: str = "text"
    #: Deliveries written in one transaction at most (group commit).
    inbox_max_batch: int = 128
    #: How long a delivery waits for its commit before the sender is told 503 to retry later;
    #: shorter than senders' own timeouts (5 s or less), or the 503 reaches nobody.
    commit_timeout_s: float = 4.0
    worker_batch_size: int = 1000
    worker_poll_s: float = 0.5
    #: How long a worker's claim on a batch lasts before others may take it over.
    claim_timeout_s: float = 120.0
    max_attempts: int = 8
    retry_base_s: float = 2.0
    retry_max_s: float = 3600.0
    #: How long the worker waits for a burst to fill a batch before processing it.
    batch_window_s: float = 0.5
    retention_days: int = 30
    #: Console sign-ins one client address may try within ``sign_in_window_s`` without one
    #: succeeding; past them, its sign-ins are refused until that window has passed.
    sign_in_attempts: int = 5
    sign_in_window_s: float = 300.0
    #: Reverse proxies in front of the web processes whose X-Forwarded-For entries are believed:
    #: the client's address is the one the outermost of them saw (0: the connection's peer).
    trusted_proxies: int = 0
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
        instance = Path(env.get("GATEWAY_INSTANCE_PATH") or instance_path or "instance").resolve()
        return cls(
            instance_path=instance,
            database_url=_database_url(env, instance),
            public_url=(env.get("GATEWAY_PUBLIC_URL") or _served_url(env)).rstrip("/"),
            admin_token=env.get("GATEWAY_ADMIN_TOKEN") or None,
            secret_key=env.get("GATEWAY_SECRET_KEY") or None,
            max_body_bytes=_number(env, "GATEWAY_MAX_BODY_BYTES", MiB, 1),
            max_header_bytes=_number(env, "GATEWAY_MAX_HEADER_BYTES", 16 * 1024, 1),
            target=_target(env),
            log_format=_choice(env, "GATEWAY_LOG_FORMAT", "text", LOG_FORMATS),
            inbox_max_batch=_number(env, "GATEWAY_INBOX_MAX_BATCH", 128, 1),
            commit_timeout_s=_number(env, "GATEWAY_COMMIT_TIMEOUT_S", 4.0, 0.0, above=True),
            worker_batch_size=_number(env, "GATEWAY_WORKER_BATCH_SIZE", 1000, 1),
            worker_poll_s=_number(env, "GATEWAY_WORKER_POLL_S", 0.5, 0.0, above=True),
            claim_timeout_s=_number(env, "GATEWAY_CLAIM_TIMEOUT_S", 120.0, 0.0, above=True),
            max_attempts=_number(env, "GATEWAY_MAX_ATTEMPTS", 8, 1),
            retry_base_s=_number(env, "GATEWAY_RETRY_BASE_S", 2.0, 0.0),
            retry_max_s=_number(env, "GATEWAY_RETRY_MAX_S", 3600.0, 0.0),
            batch_window_s=_number(env, "GATEWAY_BATCH_WINDOW_S", 0.5, 0.0),
            retention_days=_number(env, "GATEWAY_RETENTION_DAYS", 30, 0),
            sign_in_attempts=_number(env, "GATEWAY_SIGN_IN_ATTEMPTS", 5, 1),
            sign_in_window_s=_number(
                env,
                "GATEWAY_SIGN_IN_WINDOW_S",
                300.0,
                0.0,
                above=True,
                maximum=MAX_SIGN_IN_WINDOW_S,
            ),
            trusted_proxies=_number(env, "GATEWAY_TRUSTED_PROXIES", 0, 0),
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
    workers: int = 2
    connections: int = 16
    #: gunicorn's own lines (starting, booting workers, errors) follow the gateway's format.
    log_format: str = "text"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerSettings:
        """Read ``GATEWAY_BIND`` (or ``PORT``) and ``GATEWAY_WEB_*`` from ``env``.

        Raises ConfigurationError, naming the variable, for a value gunicorn cannot use.
        """
        if env is None:
            env = environment()
        return cls(
            bind=_bind(env),
            workers=_number(env, "GATEWAY_WEB_WORKERS", 2, 1),
            connections=_number(env, "GATEWAY_WEB_CONNECTIONS", 16, 1),
            log_format=_choice(env, "GATEWAY_LOG_FORMAT", "text", LOG_FORMATS),
        )


def _bind(env: Mapping[str, str]) -> str:
    """``GATEWAY_BIND``; else every interface on ``PORT`` where a platform sets one; else loopback.

    Platforms that run the Procfile (Heroku and its likes) say which port to serve on in
    ``PORT`` and route to it from outside, so loopback would be unreachable there.
    """
    if env.get("GATEWAY_BIND"):
        return env["GATEWAY_BIND"]
    port = _number(env, "PORT", 0, 1, maximum=65535)
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

    An empty value counts as unset (README), so an empty variable of the process leaves the
    same one in ``.env`` in force rather than blanking it; with none there, it stays empty
    (``SALESFORCE_SECURITY_TOKEN=`` says the org needs no token).
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
