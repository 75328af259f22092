"""A small client of the admin API, for the CLI's remote commands.

Where to connect and with which token come from ``--url``, the environment or a config file
(:func:`connection`); the token never from a command-line argument, which ``ps`` would show.
Every failure is a :class:`~gateway.errors.GatewayError`: the API's own error body when it
answered one, a one-line reason when it could not be reached.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from gateway.errors import ConfigurationError, Detail, GatewayError

#: The settings the remote commands read, before the config file's.
URL_VARIABLE = "GATEWAY_URL"
TOKEN_VARIABLE = "GATEWAY_ADMIN_TOKEN"
#: Where the config file is, when not the default under the XDG config directory.
CONFIG_VARIABLE = "GATEWAY_CLI_CONFIG"
TIMEOUT_S = 30


class ApiError(GatewayError):
    """The gateway answered with an error."""


class Unreachable(GatewayError):
    """The gateway could not be reached."""

    code = "unreachable"


def config_path(env: Mapping[str, str]) -> Path:
    """``$GATEWAY_CLI_CONFIG``, else ``cli.toml`` in the XDG config directory's ``gateway/``."""
    if env.get(CONFIG_VARIABLE):
        return Path(env[CONFIG_VARIABLE])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gateway" / "cli.toml"


def read_config(path: Path) -> dict[str, str]:
    """The ``url`` and ``token`` of a config file; nothing when there is none.

    A token in a file others may read is refused, as ssh refuses such a private key: whoever
    reads it is admin of the gateway.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        document = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    values: dict[str, Any] = {k: document[k] for k in ("url", "token") if k in document}
    for key, value in values.items():
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"{path}: {key} must be a non-empty string")
    if "token" in values and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"{path} holds the admin token but others may read it: chmod 600 {path}"
        )
    return values


@dataclass(frozen=True)
class Connection:
    """Where the admin API is and the token it takes."""

    url: str
    token: str


def remote_url(given: str | None, env: Mapping[str, str]) -> str | None:
    """The gateway named by ``--url``, ``GATEWAY_URL`` or the config file; None when none is."""
    return given or env.get(URL_VARIABLE) or read_config(config_path(env)).get("url")


def connection(given: str | None, env: Mapping[str, str] | None = None) -> Connection:
    """The remote gateway named, or else the local one as ``gateway token`` knows it: only
    the local one's token is looked for in its instance directory."""
    env = dict(os.environ) if env is None else env
    url = remote_url(given, env)
    token = env.get(TOKEN_VARIABLE) or read_config(config_path(env)).get("token")
    if url is None:
        from gateway.config import Settings, environment

        local = Settings.from_env(environment())
        url = local.public_url
        token = token or local.ensure_instance_secrets().admin_token
    if not token:
        raise ConfigurationError(
            f"no admin token for {url}: set {TOKEN_VARIABLE} or the token of {config_path(env)}"
        )
    return Connection(url.rstrip("/"), token)


class Client:
    """The admin API's calls the CLI makes, each answering the decoded JSON body."""

    def __init__(self, where: Connection) -> None:
        self.base = f"{where.url}/api/v1"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {where.token}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.session.request(method, self.base + path, timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as exc:
            reason = type(exc).__name__
            raise Unreachable(f"cannot reach {self.base}: {reason}") from exc
        if response.status_code >= 400:
            raise _api_error(response)
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v})

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, json=body if body is not None else {})

    def each(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list, page after page."""
        cursor = None
        while True:
            page = self.get(path, **params, cursor=cursor)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return


def _api_error(response: requests.Response) -> ApiError:
    """The contract's error body as an error, or the status line when the body is not one."""
    try:
        error = response.json()["error"]
        details = [Detail(d.get("path", ""), d["message"]) for d in error.get("details", [])]
        return ApiError(error["message"], code=error["code"], details=details)
    except (ValueError, KeyError, TypeError):
        return ApiError(f"HTTP {response.status_code} {response.reason}", code="http_error")
