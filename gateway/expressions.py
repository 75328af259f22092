"""JMESPath for every step that reads one: compiling and checking an expression, plain functions
for those that only pick fields, and an interpreter that keeps what an expression makes bounded.

Intake locates each event's type, id and time with :class:`Query`; connector profiles, mapping
documents and webhook record filters are checked with :func:`syntax_problem` and
:func:`functions_called` when saved; mappings and filters are evaluated by
:class:`BoundedInterpreter`. Pure: no Flask, no database.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

import jmespath
from jmespath.exceptions import IncompleteExpressionError, JMESPathError
from jmespath.lexer import Lexer
from jmespath.parser import ParsedResult
from jmespath.visitor import TreeInterpreter

if TYPE_CHECKING:
    from jmespath.visitor import _TreeNode


def syntax_problem(source: str) -> str | None:
    """Why ``source`` is no JMESPath expression, or None when it parses.

    The first line says what is wrong; the next ones are jmespath's drawing of the expression
    with a caret under the place.
    """
    if _has_bare_literal(source):
        return (
            "not a valid JMESPath expression: a literal in backticks must be JSON"
            " (`\"text\"`, `1`, `[1, 2]`); write text as 'text'"
        )
    try:
        jmespath.compile(source)
    except JMESPathError as exc:
        first, _, drawing = str(exc).partition("\n")
        if isinstance(exc, IncompleteExpressionError):
            reason = "it ends too early"
        else:
            reason = first.removeprefix("Bad jmespath expression: ")
            reason = reason.removesuffix(", for expression:").rstrip(":")
        return f"not a valid JMESPath expression: {reason}\n{drawing}"
    return None


def _has_bare_literal(source: str) -> bool:
    """Whether ``source`` has a backtick literal that is not JSON (`` `text` ``): jmespath still
    reads it as text, with a deprecation warning, and a later release will not."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", PendingDeprecationWarning)
        try:
            for _ in Lexer().tokenize(source):
                pass
        except PendingDeprecationWarning:
            return True
        except JMESPathError:
            return False  # compiling it says what is wrong, and where
    return False


def tree(source: str) -> _TreeNode:
    """The parsed form of an expression known to parse (jmespath caches recent ones)."""
    return jmespath.compile(source).parsed


def functions_called(node: Mapping[str, Any]) -> Iterator[tuple[str, int]]:
    """Every function call in the tree: its name and how many arguments it is given.

    JMESPath only looks a function up when it evaluates the call, so a misspelt name or a
    missing argument would fail every event rather than the save.
    """
    if node["type"] == "function_expression":
        yield node["value"], len(node["children"])
    for child in node.get("children", ()):
        if isinstance(child, dict):  # slices keep plain numbers among their children
            yield from functions_called(child)


class SearchFailed(ValueError):
    """A query could not be applied to the data it was given (a function given the wrong type)."""


@dataclass(frozen=True)
class Query:
    """A compiled JMESPath with the standard functions; read by a plain function when all it
    does is pick fields.

    Most profiles locate the type, id and time with expressions such as ``type``,
    ``data.object.id`` or ``[topic, eventTimestamp, data]``; the interpreter walks their tree
    on every delivery, a plain function does the same in a fraction of the time.
    """

    parsed: ParsedResult
    reader: Callable[[Any], Any] | None

    @classmethod
    def of(cls, text: str) -> Query:
        parsed = jmespath.compile(text)
        return cls(parsed, _reader_of(parsed.parsed))

    @property
    def text(self) -> str:
        return str(self.parsed.expression)

    def search(self, data: Any) -> Any:
        if self.reader is not None:
            return self.reader(data)
        try:
            return self.parsed.search(data)
        except JMESPathError as exc:
            raise SearchFailed(f"`{self.text}` cannot be applied: {exc}") from exc


def _reader_of(node: Mapping[str, Any]) -> Callable[[Any], Any] | None:
    """What JMESPath returns for a field, a chain of fields, or a list of those; else None."""
    kind = node["type"]
    if kind == "field":
        name = node["value"]
        return lambda data: data.get(name) if isinstance(data, dict) else None
    parts = [_reader_of(child) for child in node["children"]]
    if kind not in ("subexpression", "multi_select_list") or any(p is None for p in parts):
        return None
    readers = [p for p in parts if p is not None]
    if kind == "multi_select_list":
        return lambda data: None if data is None else [read(data) for read in readers]
    return functools.partial(_chain, readers)


def _chain(readers: list[Callable[[Any], Any]], data: Any) -> Any:
    for read in readers:
        if data is None:
            return None
        data = read(data)
    return data


class FunctionError(JMESPathError):
    """A function was given a value it cannot convert, or an expression made too large a value."""


#: The most a value made by an expression may hold, counting each character of text and each
#: item of a list or object: four times the default largest delivery. Without a bound a short
#: expression makes an exponentially large value (``replace`` with a long replacement nested a
#: few times, or ``concat(@, @)``, ``[@, @][]`` and ``to_string({a: @, b: @})`` piped one into
#: the next) and takes the worker, or the web process previewing it, down with it.
MAX_VALUE_SIZE = 4 * 1024 * 1024


def check_size(value: Any, made_by: str) -> None:
    """FunctionError when ``value`` holds more than MAX_VALUE_SIZE; never walks further than that.

    Values may share parts (``[@, @]`` holds one list twice), so the walk counts each part as
    often as serializing the value would write it, and stops as soon as the budget is spent.
    Most values are a number or a short text: those take no walk (this runs for every field).
    """
    if not isinstance(value, dict | list):
        if isinstance(value, str) and len(value) > MAX_VALUE_SIZE:
            raise FunctionError(f"{made_by} makes a text larger than {MAX_VALUE_SIZE} characters")
        return
    budget = MAX_VALUE_SIZE
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            budget -= len(item)
        elif isinstance(item, dict):
            budget -= len(item) + sum(len(key) for key in item)
            pending.extend(item.values())
        elif isinstance(item, list):
            budget -= len(item)
            pending.extend(item)
        else:
            budget -= 1
        if budget < 0:
            raise FunctionError(
                f"{made_by} makes a value larger than {MAX_VALUE_SIZE} characters and items"
            )


def is_number(value: Any) -> TypeGuard[int | float]:
    """True for JSON numbers; booleans are ints in Python but not numbers in JSON."""
    return isinstance(value, int | float) and not isinstance(value, bool)


_ORDERING = frozenset({"lt", "lte", "gt", "gte"})


class BoundedInterpreter(TreeInterpreter):
    """JMESPath's interpreter, with ordering comparisons of unlike values null, as the JMESPath
    specification has them: jmespath raises Python's TypeError for a string against a number.

    It also keeps values within MAX_VALUE_SIZE where they can double: a flatten of a list
    holding another twice, and an equality test, which compares shared parts once per share.
    One instance serves every evaluation: it holds no per-evaluation state, and
    ``ParsedResult.search`` would build a new one per call, costing more than a typical field.
    """

    def visit_flatten(self, node: Any, value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if not isinstance(base, list):
            return None
        items = sum(len(element) if isinstance(element, list) else 1 for element in base)
        if items > MAX_VALUE_SIZE:  # counted before it is made; the items are checked elsewhere
            raise FunctionError(f"a flatten ([]) makes a value larger than {MAX_VALUE_SIZE} items")
        flat: list[Any] = []
        for element in base:
            if isinstance(element, list):
                flat.extend(element)
            else:
                flat.append(element)
        return flat

    def visit_comparator(self, node: Any, value: Any) -> Any:
        operator = node["value"]
        left = self.visit(node["children"][0], value)
        right = self.visit(node["children"][1], value)
        if operator not in _ORDERING:
            check_size(left, "a comparison")
            check_size(right, "a comparison")
            return self.COMPARATOR_FUNC[operator](left, right)
        if (is_number(left) and is_number(right)) or (
            isinstance(left, str) and isinstance(right, str)
        ):
            return self.COMPARATOR_FUNC[operator](left, right)
        return None
