"""Gunicorn reads this file from the working directory: the gateway's settings."""

from gateway.gunicorn_config import *  # noqa: F403
