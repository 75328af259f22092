"""The names of targets, below both the settings that choose one and the registry that opens it."""

from __future__ import annotations

import re

#: The targets there are: the local store, Salesforce orgs and HTTP receivers, each profile
#: reading its own ``SALESFORCE_<PROFILE>_*`` or ``HTTP_<PROFILE>_*`` variables.
TARGET_NAME = re.compile(r"local|(salesforce|http)(:[A-Za-z0-9_]+)?")
TARGET_NAMES = "local, salesforce, salesforce:<profile>, http or http:<profile>"


def is_target_name(name: str) -> bool:
    """Whether ``name`` is a target the registry can open (its settings aside)."""
    return TARGET_NAME.fullmatch(name) is not None


def target_kind(name: str) -> str:
    """``local``, ``salesforce`` or ``http``: the part of the name before any profile."""
    return name.partition(":")[0]
