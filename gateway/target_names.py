"""The names of targets, below both the settings that choose one and the registry that opens it."""

from __future__ import annotations

import re

#: The targets there are: the local store, and Salesforce orgs, each profile reading its own
#: ``SALESFORCE_<PROFILE>_*`` variables.
TARGET_NAME = re.compile(r"local|salesforce(:[A-Za-z0-9_]+)?")
TARGET_NAMES = "local, salesforce or salesforce:<profile>"


def is_target_name(name: str) -> bool:
    """Whether ``name`` is a target the registry can open (its settings aside)."""
    return TARGET_NAME.fullmatch(name) is not None
