"""JMESPath as every step reads it: checked on save, fast when it only picks fields, bounded."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.expressions import (
    MAX_VALUE_SIZE,
    BoundedInterpreter,
    FunctionError,
    Query,
    SearchFailed,
    functions_called,
    syntax_problem,
    tree,
)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("a.b", None),
        # an unfinished expression, and jmespath's drawing of where it stops
        (
            "payload.[",
            'not a valid JMESPath expression: it ends too early\n"payload.["\n          ^',
        ),
        ("a = 'b'", "not a valid JMESPath expression: Unknown token '='\na = 'b'\n  ^"),
        ("a..b", "not a valid JMESPath expression: Expecting: "),
        # text in backticks that is not JSON: deprecated by jmespath, so refused when saved
        ("`local`", "not a valid JMESPath expression: a literal in backticks must be JSON"),
        ('`"local"`', None),
        ('[`1`, `{"a": 2}`]', None),
    ],
)
def test_syntax_problem(source: str, problem: str | None) -> None:
    found = syntax_problem(source)

    assert found == problem if problem is None else (found or "").startswith(problem)


def test_functions_called_are_found_however_deep_they_sit() -> None:
    calls = functions_called(tree("upper(to_string(sum([`1`])), 'x') || a[1:2].length(@)"))

    assert sorted(calls) == [("length", 1), ("sum", 1), ("to_string", 1), ("upper", 2)]


def test_a_query_that_fails_on_the_data_names_itself() -> None:
    with pytest.raises(SearchFailed, match=r"^`length\(a\)` cannot be applied: "):
        Query.of("length(a)").search({"a": 1})


INTERPRETER = BoundedInterpreter()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a < b", None),  # a number against a string orders as null, as the specification says
        ("b < c", True),  # strings order
        ("a < `2`", True),
        ("[a, [a, b]][]", [1, 1, "x"]),
    ],
)
def test_the_bounded_interpreter_evaluates_as_the_specification_says(
    source: str, expected: Any
) -> None:
    assert INTERPRETER.visit(tree(source), {"a": 1, "b": "x", "c": "y"}) == expected


@pytest.mark.parametrize(
    "source",
    [
        "[@, @, @][]",  # a flatten that would be larger than the bound
        "[@, @] == `[]`",  # a comparison of a value larger than the bound
    ],
)
def test_the_bounded_interpreter_refuses_values_past_the_bound(source: str) -> None:
    big = list(range(MAX_VALUE_SIZE // 2))

    with pytest.raises(FunctionError, match=str(MAX_VALUE_SIZE)):
        INTERPRETER.visit(tree(source), big)


# --- expressions that only pick fields are read without the interpreter -------------------

NAMES = st.sampled_from(["a", "b", "type", "data"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=4),
    max_leaves=12,
)
FIELD_CHAINS = st.lists(NAMES, min_size=1, max_size=3).map(".".join)
#: Fields, chains of fields, lists of those, and chains ending in a list (``a.[b, c.d]``).
PICKING = st.recursive(
    FIELD_CHAINS,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3).map(lambda e: "[" + ", ".join(e) + "]")
        | st.tuples(FIELD_CHAINS, inner).map(lambda pair: f"{pair[0]}.{pair[1]}")
    ),
    max_leaves=6,
)


@given(PICKING, JSON_VALUES)
def test_a_picking_expression_reads_what_jmespath_returns(expression: str, data: Any) -> None:
    compiled = Query.of(expression)

    assert compiled.reader is not None, "fields, chains and lists of them need no interpreter"
    assert compiled.search(data) == jmespath.search(expression, data)


@pytest.mark.parametrize("expression", ["a[0]", "a || b", "[?a].b", "length(a)", "a.*"])
def test_other_expressions_go_through_the_interpreter(expression: str) -> None:
    compiled = Query.of(expression)
    data = {"a": [{"a": 1, "b": 2}]}

    assert compiled.reader is None
    assert compiled.search(data) == jmespath.search(expression, data)
