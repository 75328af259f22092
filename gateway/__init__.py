"""Inbound webhook listener and mapping gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """The Flask app factory (see :func:`gateway.web.create_app`)."""
    from gateway.web import create_app as factory

    return factory(overrides)
