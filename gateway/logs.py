"""Logging: plain text by default, one JSON object per line with ``GATEWAY_LOG_FORMAT=json``.

Log records carry the ids an operator searches by (``delivery_id``, ``event_id``,
``group_id``) as structured fields, so a JSON log pipeline can filter on them directly.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from gunicorn.glogging import Logger
from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The environ key where the receive endpoint leaves what the access log shows of a callback's
#: path: the path holds the group's token, the only credential of a group without a secret.
LOGGED_PATH = "gateway.logged_path"


class _JsonLines(JsonFormatter):
    """JSON lines whose ``time`` is an ISO 8601 instant in UTC, as every time in the API is."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_lines() -> logging.Formatter:
    """The JSON formatter, for the gateway's loggers and gunicorn's alike."""
    return _JsonLines(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def gunicorn_logging(log_format: str) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its own loggers in the gateway's format (text: its own)."""
    if log_format != "json":
        return {}
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    logger = {"handlers": ["json"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "gateway.logs.json_lines"}},
        "handlers": {"json": handler},
        "loggers": {
            "gunicorn.error": logger,
            "gunicorn.access": logger,
            # Alembic tells at INFO of its plugins as each process starts, and of its migration
            # context at every readiness check; only its warnings are news.
            "alembic": {"level": "WARNING"},
        },
        "root": {"level": "INFO", "handlers": ["json"]},  # replaces gunicorn's text default
    }


class AccessLogger(Logger):
    """gunicorn's logger, with no callback token nor a callback's query values in any access
    log line.

    Wherever a callback's path appears (the request line, the path, a header or environ value
    a log format may name), it is replaced by what the receive endpoint left in LOGGED_PATH.
    """

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: timedelta) -> Any:
        atoms = super().atoms(resp, req, environ, request_time)
        shown = environ.get(LOGGED_PATH)
        if shown is None:
            return atoms
        # As decoded, and as sent (perhaps percent-encoded, perhaps with scheme and host).
        forms = {environ.get("PATH_INFO", ""), environ.get("RAW_URI", "").partition("?")[0]}
        hidden = [(path, shown) for path in sorted(forms - {""}, key=len, reverse=True)]
        query = environ.get("QUERY_STRING")
        if query:  # a sender may put its API key there
            hidden.append((query, _names_only(query)))
        return {name: _hiding(value, hidden) for name, value in atoms.items()}


def _names_only(query: str) -> str:
    """A query with each value replaced by ``-``: which parameters came, none of what they held."""
    return "&".join(part.partition("=")[0] + "=-" for part in query.split("&"))


def _hiding(value: Any, hidden: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for found, shown in hidden:
            value = value.replace(found, shown)
    return value


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Give the ``gateway`` loggers one stderr handler in the chosen format (idempotent)."""
    logger = logging.getLogger("gateway")
    if any(getattr(h, "_gateway", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._gateway = True  # type: ignore[attr-defined]
    if log_format == "json":
        handler.setFormatter(json_lines())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
