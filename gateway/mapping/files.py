"""Mapping documents kept as files (``mappings/``), in JSON or YAML.

Every file is read and validated before the caller stores any, so one bad file stops the whole
load and every problem of every file is reported at once. YAML is the friendlier format for
hand-written mappings; quote every expression in it, since JMESPath literals (``'Picked'``,
`` `42` ``) are not YAML.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import Detail, ValidationFailed
from gateway.mapping import validate_document
from gateway.validation import strict_json


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error, as YAML says it
    is: PyYAML keeps the last, so the first would silently not count. And no alias: a few
    lines of aliases of aliases stand for billions of values, which validating (or only
    quoting one in an error) writes out until memory runs out."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            alias = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed", alias.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                continue  # the base class refuses what a document cannot hold
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {json.dumps(key)} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # safe: _Loader is a SafeLoader


_PARSERS: dict[str, Callable[[str], Any]] = {
    ".json": strict_json,
    ".yaml": _yaml,
    ".yml": _yaml,
}


def load_mapping_files(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every mapping file in ``directory``, sorted by file name, each parsed to a valid document.

    A document without ``name`` takes the file's stem. Files that cannot be parsed, documents
    that are not valid and names used twice are all reported in one :class:`ValidationFailed`:
    each detail's path is the file's name, its message the problem, led by the path inside the
    document where there is one (as ``PUT /api/v1/mappings/{name}`` gives it).
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
            document.setdefault("name", path.stem)
            validate_document(document)
        except ValidationFailed as exc:
            problems += [_in_file(path, detail) for detail in exc.details]
            continue
        name = document["name"]
        if name in owners:
            problems.append(Detail(path.name, f"uses the name '{name}' of {owners[name]}"))
        else:
            owners[name] = path.name
        loaded.append((path, document))
    if problems:
        bad = len({detail.path for detail in problems})
        raise ValidationFailed(
            f"{bad} of {len(paths)} mapping files cannot be loaded, so none was loaded.",
            details=problems,
        )
    return loaded


def _in_file(path: Path, detail: Detail) -> Detail:
    """A document's problem as one of the directory's: the file, then where in the document."""
    return Detail(path.name, f"{detail.path}: {detail.message}" if detail.path else detail.message)


def _parse(path: Path) -> dict[str, Any]:
    try:
        document = _PARSERS[path.suffix.lower()](path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValidationFailed(details=[Detail("", f"cannot be parsed: {_reason(exc)}")]) from exc
    if not isinstance(document, dict):
        raise ValidationFailed(details=[Detail("", "must hold one mapping (an object)")])
    return document


def _reason(exc: Exception) -> str:
    """The parser's complaint on one line, led by the line and column where it has them."""
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        return f"line {mark.line + 1}, column {mark.column + 1}: {what}"
    return " ".join(str(exc).split())
