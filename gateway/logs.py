"""Logging: plain text by default, one JSON object per line with ``GATEWAY_LOG_FORMAT=json``.

Log records carry the ids an operator searches by (``delivery_id``, ``event_id``,
``group_id``) as structured fields, so a JSON log pipeline can filter on them directly.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
        "loggers": {"gunicorn.error": logger, "gunicorn.access": logger},
        "root": {"level": "INFO", "handlers": ["json"]},  # replaces gunicorn's text default
    }


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
