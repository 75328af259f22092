"""Mapping documents kept as files (``mappings/``), in JSON or YAML.

Every file is read and validated before the caller stores any, so one bad file stops the whole
load and every problem of every file is reported at once. YAML is the friendlier format for
hand-written mappings; quote every expression in it, since JMESPath literals (``'Picked'``,
`` `42` ``) are not YAML, and any key YAML would read as something else (``on``, ``yes``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
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


#: What YAML makes of an unquoted key that is not text, by the tag it resolves the key to.
_NOT_TEXT = {
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:timestamp": "a date",
}
_TEXT = "tag:yaml.org,2002:str"


def _yaml(text: str) -> tuple[Any, list[Detail]]:
    """The document, and each unquoted key YAML reads as something other than text.

    ``on:`` or ``yes:`` is the boolean true to YAML, so a field named so would be refused as
    ``fields[True]``. Such a key is read as the text it spells, for the rest of the document
    to be checked as meant, and reported with the quoting it needs.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        keys = [] if node is None else list(_keys_not_text(node, ""))
        return (None if node is None else loader.construct_document(node)), keys
    finally:
        loader.dispose()


def _keys_not_text(node: yaml.Node, path: str) -> Iterator[Detail]:
    """Report, and retag as text, every plain key resolved to a boolean, null, number or date."""
    if isinstance(node, yaml.SequenceNode):
        for index, element in enumerate(node.value):
            yield from _keys_not_text(element, f"{path}[{index}]")
    if not isinstance(node, yaml.MappingNode):
        return
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            continue  # the constructor refuses a list or a mapping as a key
        where = f"{path}.{key.value}" if path else key.value
        if key.style is None and key.tag in _NOT_TEXT:
            read_as = _NOT_TEXT[key.tag]
            if key.tag == "tag:yaml.org,2002:bool":
                read_as += f" ({json.dumps(_Loader.bool_values[key.value.lower()])})"
            yield Detail(
                where,
                f"line {key.start_mark.line + 1}: YAML reads the unquoted key {key.value} as"
                f" {read_as}, not as text; quote it: {json.dumps(key.value)}",
            )
            key.tag = _TEXT
        yield from _keys_not_text(value, where)


def _json(text: str) -> tuple[Any, list[Detail]]:
    return strict_json(text), []


_PARSERS: dict[str, Callable[[str], tuple[Any, list[Detail]]]] = {
    ".json": _json,
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
        found: list[Detail] = []
        try:
            document, found = _parse(path)  # keys YAML misread come first: the first to fix
            document.setdefault("name", path.stem)
            validate_document(document)
        except ValidationFailed as exc:
            found = [*found, *exc.details]
        if found:
            problems += [_in_file(path, detail) for detail in found]
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


def _parse(path: Path) -> tuple[dict[str, Any], list[Detail]]:
    """The document, and the keys a YAML file has that YAML does not read as text."""
    try:
        document, keys = _PARSERS[path.suffix.lower()](path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValidationFailed(details=[Detail("", f"cannot be parsed: {_reason(exc)}")]) from exc
    if not isinstance(document, dict):
        raise ValidationFailed(details=[Detail("", "must hold one mapping (an object)")])
    return document, keys


def _reason(exc: Exception) -> str:
    """The parser's complaint on one line, led by the line and column where it has them."""
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        return f"line {mark.line + 1}, column {mark.column + 1}: {what}"
    return " ".join(str(exc).split())


class _Dumper(yaml.SafeDumper):
    """YAML that the loader here reads back as it was: no aliases, even for a value that
    appears twice; keys and text that YAML would read as something else are quoted."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


#: Characters a file name keeps from a mapping's name; the others become ``_``.
_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def write_mapping_files(directory: Path, documents: list[dict[str, Any]]) -> Iterator[Path]:
    """Write each document as ``{name}.yaml`` in ``directory`` (made now, documents or not),
    its name inside it, so that loading the directory reads back the same documents; each
    path as soon as it is written. A name a file name cannot hold is written with ``_`` for
    each such character, numbered if two would meet."""
    directory.mkdir(parents=True, exist_ok=True)
    return _written(directory, documents)


def _written(directory: Path, documents: list[dict[str, Any]]) -> Iterator[Path]:
    written: list[Path] = []
    for document in documents:
        stem = _UNSAFE_IN_FILE_NAME.sub("_", document["name"]).lstrip(".") or "mapping"
        path, number = directory / f"{stem}.yaml", 1
        while path in written:
            number += 1
            path = directory / f"{stem}-{number}.yaml"
        text = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
        yield path
