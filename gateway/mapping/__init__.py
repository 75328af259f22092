"""The mapping engine: checks mapping documents and turns one event into the upserts it asks for.

Pure: no database, no network. A document is validated and compiled once per version; planning
an event then only evaluates precompiled expressions, because the worker plans thousands of
events a second. The document format is fixed by MAPPINGS.md and ``schema.json``.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from jmespath.exceptions import JMESPathError
from jsonschema import Draft202012Validator

from gateway.errors import Detail, MappingError, ValidationFailed
from gateway.expressions import (
    BoundedInterpreter,
    check_size,
    functions_called,
    is_number,
    syntax_problem,
    tree,
)
from gateway.mapping.functions import OPTIONS, arity_problem, as_text, show
from gateway.targets.base import ParentLink, UpsertRequest
from gateway.validation import join_path, schema_details

__all__ = [
    "CompiledMapping",
    "Expression",
    "Plan",
    "PlannedUpsert",
    "SkippedUpsert",
    "compile_mapping",
    "diff_plans",
    "event_context",
    "expression_problems",
    "validate_document",
]


_INTERPRETER = BoundedInterpreter(OPTIONS)
_VALIDATOR = Draft202012Validator(
    json.loads(files(__package__).joinpath("schema.json").read_text(encoding="utf-8"))
)
#: The keys of an upsert whose values are expressions, besides those under ``fields``.
_EXPRESSION_KEYS = ("external_id", "when", "for_each", "order_by")


# Validation ---------------------------------------------------------------------------------


def validate_document(document: Any, *, name: str | None = None) -> None:
    """Raise :class:`ValidationFailed` listing every problem, so an admin fixes them in one go.

    ``name`` is the name the document is saved under; the document must carry the same one.
    """
    _check(document, name, lint=True)


def _check(document: Any, name: str | None, *, lint: bool) -> None:
    """``lint``: also what would only fail or yield null once evaluated (unknown functions,
    wrong arity, names an expression cannot start from), which compiling does not need."""
    problems = list(
        dict.fromkeys([*_schema_problems(document), *_semantic_problems(document, name, lint=lint)])
    )
    if problems:
        count = f"{len(problems)} problem{'s' * (len(problems) != 1)}"
        raise ValidationFailed(f"The mapping document has {count}.", details=problems)


def _schema_problems(document: Any) -> Iterator[Detail]:
    """Schema errors, pointed at the offending key itself rather than at the object around it."""
    for error in _VALIDATOR.iter_errors(document):
        where = functools.reduce(join_path, error.absolute_path, "")
        yield from schema_details(error, where, by_key=True)


def _semantic_problems(document: Any, name: str | None, *, lint: bool) -> Iterator[Detail]:
    """What the schema cannot say: names, expressions, keys and parent links."""
    if not isinstance(document, Mapping):
        return
    own_name = document.get("name")
    if name is not None and isinstance(own_name, str) and own_name != name:
        yield Detail("name", f"must be '{name}', the name the mapping is saved under")
    upserts = document.get("upserts")
    if not isinstance(upserts, list):
        return
    earlier: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for index, upsert in enumerate(upserts):
        if not isinstance(upsert, Mapping):
            continue
        where = f"upserts[{index}]"
        yield from _expression_problems(upsert, where, lint=lint)
        yield from _parent_problems(upsert, where, earlier)
        key = upsert.get("key")
        if not isinstance(key, str):
            continue
        if key in earlier:
            yield Detail(
                f"{where}.key", f"'{key}' is already the key of upserts[{earlier[key][0]}]"
            )
        else:
            earlier[key] = (index, upsert)


def _expression_problems(upsert: Mapping[str, Any], where: str, *, lint: bool) -> Iterator[Detail]:
    fields = upsert.get("fields")
    if not isinstance(fields, Mapping):
        fields = {}
    sources = [(key, upsert.get(key)) for key in _EXPRESSION_KEYS]
    sources += [(f"fields.{name}", source) for name, source in fields.items()]
    for part, source in sources:
        if isinstance(source, str) and source:
            problems = expression_problems(source) if lint else _syntax_problems(source)
            if lint and not problems:
                problems = _name_problems(source, _no_item(upsert, part))
            for problem in problems:
                yield Detail(f"{where}.{part}", problem)
    id_field = upsert.get("external_id_field")
    if isinstance(id_field, str) and id_field in fields:
        yield Detail(
            f"{where}.fields.{id_field}", "is the external id field; set it with external_id"
        )


def expression_problems(source: str) -> list[str]:
    """The parse error, else every call of an unknown function or with the wrong arity.

    JMESPath only notices bad calls while evaluating; an admin should hear of them on save, for
    a mapping's expressions and a webhook record's filter alike.
    """
    problems = _syntax_problems(source)
    if problems:
        return problems
    calls = (arity_problem(name, given) for name, given in functions_called(tree(source)))
    return [problem for problem in calls if problem]


def _syntax_problems(source: str) -> list[str]:
    problem = syntax_problem(source)
    return [] if problem is None else [problem]


#: What a mapping expression can start from (MAPPINGS.md), and what ``event`` holds. A bare
#: ``null`` is a name too, but one that yields null as the literal would: ``x != null`` works.
_ROOTS = frozenset({"payload", "event", "item", "null"})
_EVENT_ATTRIBUTES = ("id", "type", "received_at", "group_id", "connector", "function", "group")
#: Nodes whose first child is evaluated against the object at hand, the others against what
#: the first yields; and nodes whose children are all evaluated against the object at hand.
_CHAINS = frozenset(
    {"subexpression", "index_expression", "projection", "value_projection"}
    | {"filter_projection", "pipe", "flatten"}
)
_SPREADS = frozenset(
    {"function_expression", "comparator", "or_expression", "and_expression"}
    | {"not_expression", "multi_select_list", "multi_select_dict", "key_val_pair"}
)


def _no_item(upsert: Mapping[str, Any], part: str) -> str | None:
    """Why ``item`` is null wherever ``part`` of ``upsert`` is evaluated, or None if it is not."""
    if part == "when":
        return (
            "when is checked once per event, before for_each; to skip some elements, filter"
            " them in for_each (payload.lines[?ok])"
        )
    if part == "for_each":
        return "for_each is evaluated once per event, before there are elements; use payload"
    if "for_each" not in upsert:
        return "this upsert has no for_each, so there are no elements; use payload or add for_each"
    return None


def _name_problems(source: str, no_item: str | None = None) -> list[str]:
    """Names a mapping expression starts from that the evaluation object does not have, or
    that are null wherever it is evaluated (``no_item`` says why ``item`` is, when it is).

    They would yield null for every event, silently: a typo (``payloda.id``,
    ``event.recieved_at``, ``Details.OrderNumber`` without ``payload.``) never worth keeping.
    """
    problems = []
    for node in _rooted(tree(source)):
        name = node["value"] if node["type"] == "field" else None
        if name in ("true", "false"):
            problems.append(f"bare {name} is a name, which yields null; the literal is `{name}`")
        elif name == "item" and no_item is not None:
            problems.append(f"starts from item, which is null here: {no_item}")
        elif name is not None and name not in _ROOTS:
            problems.append(f"starts from '{name}', which is not payload, event or item")
        elif node["type"] == "subexpression" and _is_field(node["children"][0], "event"):
            attribute = node["children"][1]
            if attribute["type"] == "field" and attribute["value"] not in _EVENT_ATTRIBUTES:
                problems.append(
                    f"event has no '{attribute['value']}' (it has {', '.join(_EVENT_ATTRIBUTES)})"
                )
    return problems


def _rooted(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The nodes evaluated against the evaluation object itself."""
    yield node
    if node["type"] in _CHAINS:
        children = node["children"][:1]
    elif node["type"] in _SPREADS:
        children = node["children"]
    else:  # literals, @, indexes, slices; &expressions are evaluated against list elements
        return
    for child in children:
        yield from _rooted(child)


def _is_field(node: Mapping[str, Any], name: str) -> bool:
    return bool(node["type"] == "field" and node["value"] == name)


def _parent_problems(
    upsert: Mapping[str, Any], where: str, earlier: Mapping[str, tuple[int, Mapping[str, Any]]]
) -> Iterator[Detail]:
    parent = upsert.get("parent")
    if not isinstance(parent, Mapping):
        return
    relationship, fields = parent.get("relationship"), upsert.get("fields")
    if isinstance(fields, Mapping) and isinstance(relationship, str) and relationship in fields:
        yield Detail(
            f"{where}.fields.{relationship}",
            "is the parent's relationship field; the parent link sets it",
        )
    if not isinstance(parent.get("key"), str):
        return
    key = parent["key"]
    if key not in earlier:
        yield Detail(f"{where}.parent.key", f"no earlier upsert has the key '{key}'")
    elif "for_each" in earlier[key][1]:
        yield Detail(
            f"{where}.parent.key",
            f"upsert '{key}' has for_each, so there is no single record to point at",
        )


# Planning -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedUpsert:
    """One record an event asks for, before it is sent to a target."""

    key: str
    object: str
    external_id_field: str
    external_id: str
    fields: dict[str, Any]
    parent: ParentLink | None
    #: What ``order_by`` yielded (the stale-write guard's value); None without ``order_by``.
    order_value: Any
    #: Whether the upsert has an ``order_by`` at all, whatever it yielded for this event.
    guarded: bool = False

    def request(self, source_event_id: str | None) -> UpsertRequest:
        """The target's form of this upsert, remembering which event asked for it."""
        return UpsertRequest(
            object=self.object,
            external_id_field=self.external_id_field,
            external_id=self.external_id,
            fields=self.fields,
            parent=self.parent,
            source_event_id=source_event_id,
        )


@dataclass(frozen=True)
class SkippedUpsert:
    """An upsert of the mapping that makes no record for this event, and why, for the admin."""

    key: str
    object: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """What one event asks of a mapping: the upserts to make and the upserts it skips."""

    upserts: list[PlannedUpsert]
    skipped: list[SkippedUpsert]


class Expression:
    """A compiled expression that knows where it sits, so its errors say what failed.

    It evaluates with the mapping functions; check its source with expression_problems first.
    """

    __slots__ = ("_quoted", "_tree", "_where", "source")

    def __init__(self, source: str, where: str) -> None:
        self._tree = tree(source)
        self._where = where
        self._quoted = f"`{source}`"
        self.source = source

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        try:
            result = _INTERPRETER.visit(self._tree, context)
            check_size(result, self._quoted)
            return result
        except JMESPathError as exc:
            raise MappingError(f"{self._where}: {exc}") from exc
        except (TypeError, ValueError, ArithmeticError) as exc:
            # What jmespath's own functions and slices let through for some values (max_by
            # over mixed types, a slice step of 0, ceil of an infinite number): still only
            # this event's problem, never the worker's.
            raise MappingError(f"{self._where}: cannot be evaluated here ({exc})") from exc


@dataclass(frozen=True, slots=True)
class _Upsert:
    """One entry of ``upserts``, compiled."""

    key: str
    object: str
    external_id_field: str
    external_id: Expression
    fields: tuple[tuple[str, Expression], ...]
    when: Expression | None
    for_each: Expression | None
    order_by: Expression | None
    parent: tuple[str, str] | None  # (parent key, relationship)

    @classmethod
    def compile(cls, spec: Mapping[str, Any]) -> _Upsert:
        where = f"upsert '{spec['key']}': "
        optional = {
            part: Expression(spec[part], where + part)
            for part in ("when", "for_each", "order_by")
            if part in spec
        }
        parent = spec.get("parent")
        return cls(
            key=spec["key"],
            object=spec["object"],
            external_id_field=spec["external_id_field"],
            external_id=Expression(spec["external_id"], where + "external_id"),
            fields=tuple(
                (name, Expression(source, f"{where}fields.{name}"))
                for name, source in spec.get("fields", {}).items()
            ),
            when=optional.get("when"),
            for_each=optional.get("for_each"),
            order_by=optional.get("order_by"),
            parent=None if parent is None else (parent["key"], parent["relationship"]),
        )

    def plan(
        self, context: Mapping[str, Any], singles: Mapping[str, PlannedUpsert]
    ) -> list[PlannedUpsert] | SkippedUpsert:
        """This upsert's records for one event or why it makes none (``singles``: the parents)."""
        link = None
        if self.parent is not None:
            parent = singles.get(self.parent[0])
            if parent is None:
                # A child of a record this event does not write must not attach to it.
                return self._skipped(f"its parent '{self.parent[0]}' was skipped")
            link = ParentLink(self.parent[1], parent.external_id_field, parent.external_id)
        if self.when is not None:
            verdict = self.when.evaluate(context)
            if verdict is not True:
                return self._skipped(f"when `{self.when.source}` is {show(verdict)}")
        if self.for_each is None:
            return [self._record(context, link)]
        elements = self.for_each.evaluate(context)
        if elements is None or elements == []:
            return self._skipped(f"for_each `{self.for_each.source}` yields {show(elements)}")
        return self._records(elements, context, link)

    def _skipped(self, reason: str) -> SkippedUpsert:
        return SkippedUpsert(self.key, self.object, reason)

    def _records(
        self, elements: Any, context: Mapping[str, Any], link: ParentLink | None
    ) -> list[PlannedUpsert]:
        if not isinstance(elements, list):
            raise MappingError(f"upsert '{self.key}': for_each yields {show(elements)}, not a list")
        scoped = dict(context)  # one shallow copy per upsert; the caller's context stays as is
        records = []
        for index, element in enumerate(elements):
            scoped["item"] = element
            try:
                records.append(self._record(scoped, link))
            except MappingError as exc:
                raise MappingError(f"{exc.message} (item {index})") from exc
        return records

    def _record(self, context: Mapping[str, Any], link: ParentLink | None) -> PlannedUpsert:
        return PlannedUpsert(
            key=self.key,
            object=self.object,
            external_id_field=self.external_id_field,
            external_id=self._external_id(context),
            fields=self._fields(context),
            parent=link,
            order_value=self._order_value(context),
            guarded=self.order_by is not None,
        )

    def _fields(self, context: Mapping[str, Any]) -> dict[str, Any]:
        fields = {name: expression.evaluate(context) for name, expression in self.fields}
        for name, value in fields.items():
            if _holds_non_finite(value):
                raise MappingError(
                    f"upsert '{self.key}': fields.{name} yields {show(value)}: JSON has no"
                    " infinite or NaN numbers, so no target can store it"
                )
        return fields

    def _external_id(self, context: Mapping[str, Any]) -> str:
        value = self.external_id.evaluate(context)
        if isinstance(value, str) and value and not value.isspace():
            return value
        if is_number(value) and math.isfinite(value):
            return as_text(value)
        if value is None:
            raise MappingError(f"upsert '{self.key}': external id is null")
        if value == "":
            raise MappingError(f"upsert '{self.key}': external id is empty")
        if isinstance(value, str):
            raise MappingError(f"upsert '{self.key}': external id is blank ({show(value)})")
        raise MappingError(
            f"upsert '{self.key}': external id is {show(value)}, not a string or number"
        )

    def _order_value(self, context: Mapping[str, Any]) -> Any:
        if self.order_by is None:
            return None
        value = self.order_by.evaluate(context)
        if value is None or isinstance(value, str) or (is_number(value) and math.isfinite(value)):
            return value
        raise MappingError(
            f"upsert '{self.key}': order_by yields {show(value)}, not a finite number or a string"
        )


def _holds_non_finite(value: Any) -> bool:
    """Whether a value is, or holds, a float JSON cannot write (sums and products can overflow)."""
    if type(value) is float:
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(map(_holds_non_finite, value))
    if isinstance(value, dict):
        return any(map(_holds_non_finite, value.values()))
    return False


@dataclass(frozen=True)
class CompiledMapping:
    """One version of a mapping document, ready to plan events; build it with compile_mapping."""

    name: str
    version: int
    document: dict[str, Any]
    _upserts: tuple[_Upsert, ...] = field(repr=False, compare=False)

    def plan(self, context: Mapping[str, Any]) -> list[PlannedUpsert]:
        """The upserts one event asks for, in document order; see MAPPINGS.md for the rules.

        Raises :class:`MappingError`, naming the upsert, when the event cannot be mapped.
        """
        return self.explained_plan(context).upserts

    def explained_plan(self, context: Mapping[str, Any]) -> Plan:
        """:meth:`plan`, with every upsert that makes no record and why, so none goes unseen.

        A :class:`MappingError` carries the ``upsert_key`` of the upsert that failed.
        """
        plan = Plan([], [])
        singles: dict[str, PlannedUpsert] = {}
        for upsert in self._upserts:
            try:
                records = upsert.plan(context, singles)
            except MappingError as exc:
                exc.upsert_key = upsert.key
                raise
            if isinstance(records, SkippedUpsert):
                plan.skipped.append(records)
                continue
            if upsert.for_each is None:
                singles[upsert.key] = records[0]
            plan.upserts.extend(records)
        return plan


def compile_mapping(document: Mapping[str, Any], version: int = 1) -> CompiledMapping:
    """Compile every expression once, for the whole of this version.

    Only what compiling needs is checked here (the format, expressions that parse, keys and
    parent links), not all that :func:`validate_document` checks on save: a version saved
    before a check was added must go on compiling, and its events fail, if at all, one by one.
    """
    _check(document, None, lint=False)
    own = copy.deepcopy(dict(document))  # later edits to the caller's dict must not leak in
    return CompiledMapping(
        name=own["name"],
        version=version,
        document=own,
        _upserts=tuple(_Upsert.compile(spec) for spec in own["upserts"]),
    )


def event_context(
    payload: Any,
    *,
    id: str,
    type: str,
    received_at: str,
    group_id: str | None,
    connector: str | None,
    function: str | None,
    group: dict[str, Any] | None,
) -> dict[str, Any]:
    """The object every expression is evaluated against (MAPPINGS.md); a payload previewed
    without a group has no group, connector or function: null.

    ``group`` is the group's ``name`` and ``external_id``, so that one mapping can serve
    several groups and still say which one (which vendor account, which site) an event is from.
    """
    return {
        "payload": payload,
        "event": {
            "id": id,
            "type": type,
            "received_at": received_at,
            "group_id": group_id,
            "connector": connector,
            "function": function,
            "group": group,
        },
        "item": None,
    }


# Preview ------------------------------------------------------------------------------------

_ABSENT = object()


def diff_plans(
    current: Sequence[PlannedUpsert], candidate: Sequence[PlannedUpsert]
) -> list[dict[str, Any]]:
    """What a candidate mapping would send differently from the current one, record by record.

    Entries come in the candidate's order, then the records only the current plan has. A field
    shows ``before`` and/or ``after``; a missing side means the field is not sent at all.
    """
    before, after = _sent_records(current), _sent_records(candidate)
    changes = []
    for record, sent in after.items():
        old = before.get(record)
        if old is None:
            changes.append(_change("added", record, {}, sent))
        elif old != sent:
            changes.append(_change("changed", record, old, sent))
    changes += [_change("removed", r, sent, {}) for r, sent in before.items() if r not in after]
    return changes


def _sent_records(plan: Sequence[PlannedUpsert]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each record's body as the target gets it; a later upsert of a record overrides fields."""
    records: dict[tuple[str, str], dict[str, Any]] = {}
    for planned in plan:
        body = planned.request(None).body()
        records.setdefault((planned.object, planned.external_id), {}).update(body)
    return records


def _change(
    kind: str, record: tuple[str, str], old: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    fields = {}
    for name in dict.fromkeys([*old, *new]):
        sides = {"before": old.get(name, _ABSENT), "after": new.get(name, _ABSENT)}
        if sides["before"] != sides["after"]:
            fields[name] = {side: v for side, v in sides.items() if v is not _ABSENT}
    return {"change": kind, "object": record[0], "external_id": record[1], "fields": fields}
