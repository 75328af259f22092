"""Mapping documents kept as files (``mappings/``), in JSON or YAML.

Only reading lives here: the caller validates and stores each document, so one bad mapping can
be reported alongside the rest. YAML is the friendlier format for hand-written mappings; quote
every expression in it, since JMESPath literals (``'Picked'``, `` `42` ``) are not YAML.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import Detail, ValidationFailed

_PARSERS: dict[str, Callable[[str], Any]] = {
    ".json": json.loads,
    ".yaml": yaml.safe_load,
    ".yml": yaml.safe_load,
}


def load_mapping_files(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every mapping file in ``directory``, sorted by file name, each parsed to its document.

    A document without ``name`` takes the file's stem. Files that cannot be read, and names used
    twice, are all reported in one :class:`ValidationFailed` whose details name the files.
    """
    paths = sorted(
        (p for p in directory.iterdir() if p.suffix.lower() in _PARSERS and p.is_file()),
        key=lambda path: path.name,
    )
    loaded: list[tuple[Path, dict[str, Any]]] = []
    problems: list[Detail] = []
    owners: dict[str, str] = {}
    for path in paths:
        try:
            document = _parse(path)
        except ValidationFailed as exc:
            problems.extend(exc.details)
            continue
        name = document.setdefault("name", path.stem)
        if isinstance(name, str) and name in owners:
            problems.append(Detail(path.name, f"uses the name '{name}' of {owners[name]}"))
        elif isinstance(name, str):
            owners[name] = path.name
        loaded.append((path, document))
    if problems:
        raise ValidationFailed("Some mapping files cannot be loaded.", details=problems)
    return loaded


def _parse(path: Path) -> dict[str, Any]:
    try:
        document = _PARSERS[path.suffix.lower()](path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValidationFailed(details=[Detail(path.name, f"cannot be parsed: {exc}")]) from exc
    if not isinstance(document, dict):
        raise ValidationFailed(details=[Detail(path.name, "must hold one mapping (an object)")])
    return document
