"""The custom JMESPath functions of mapping expressions, as a specification."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jmespath
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions

from gateway.mapping.functions import OPTIONS, MappingFunctions, arity_problem, as_text

DOCS = Path(__file__).parents[2] / "docs" / "mappings.md"

CUSTOM = {
    "sf_date",
    "sf_datetime",
    "upper",
    "lower",
    "trim",
    "concat",
    "replace",
    "default",
    "coalesce",
    "number",
    "split",
    "substring",
}


def search(expression: str, value: Any = None) -> Any:
    """Evaluate ``expression`` with ``v`` bound to ``value``, as mappings evaluate theirs."""
    return jmespath.search(expression, {"v": value}, OPTIONS)


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        # sf_date: numbers are epoch milliseconds, in UTC
        ("sf_date(v)", 1714557600000, "2024-05-01"),
        ("sf_date(v)", 1714607999999, "2024-05-01"),  # 23:59:59.999 UTC, still that day
        ("sf_date(v)", 1714608000000.0, "2024-05-02"),  # float milliseconds work too
        ("sf_date(v)", -86400000, "1969-12-31"),  # before the epoch
        ("sf_date(v)", 1714557600, "1970-01-20"),  # seconds are NOT guessed: read as ms
        # sf_date: ISO-8601 text, converted to UTC when it has an offset
        ("sf_date(v)", "2024-05-01", "2024-05-01"),
        ("sf_date(v)", "2024-05-01T23:30:00-02:00", "2024-05-02"),
        ("sf_date(v)", "2024-05-01T00:30:00+02:00", "2024-04-30"),
        ("sf_date(v)", "2024-05-01T23:30:00", "2024-05-01"),  # naive is UTC
        ("sf_date(v)", "2024-05-01T23:30:00Z", "2024-05-01"),
        ("sf_date(v)", "2024-05-01t23:30:00z", "2024-05-01"),  # RFC 3339 allows lower case
        ("sf_date(v)", None, None),
        # sf_datetime: milliseconds kept, always UTC with a Z
        ("sf_datetime(v)", 1714557600123, "2024-05-01T10:00:00.123Z"),
        ("sf_datetime(v)", 0, "1970-01-01T00:00:00.000Z"),
        ("sf_datetime(v)", "2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00.000Z"),
        ("sf_datetime(v)", "2024-05-01T10:00:00.123456Z", "2024-05-01T10:00:00.123Z"),  # truncated
        ("sf_datetime(v)", "2024-05-01 10:00", "2024-05-01T10:00:00.000Z"),  # naive is UTC
        ("sf_datetime(v)", "2024-05-01", "2024-05-01T00:00:00.000Z"),  # a date is its midnight
        ("sf_datetime(v)", None, None),
        # upper, lower, trim
        ("upper(v)", "Straße se", "STRASSE SE"),
        ("upper(v)", None, None),
        ("lower(v)", "Ada@Example.COM", "ada@example.com"),
        ("lower(v)", None, None),
        ("trim(v)", " \t Ada Lovelace \n", "Ada Lovelace"),
        ("trim(v)", None, None),
        # concat: strings and numbers, nulls left out, whole floats without .0
        ("concat('RP-', v)", 101, "RP-101"),
        ("concat('RP-', v)", 101.0, "RP-101"),
        ("concat('RP-', v)", 2.5, "RP-2.5"),
        ("concat('RP-', v, '/', `7`)", None, "RP-/7"),
        ("concat(v, v)", None, ""),  # nothing left to join
        # replace
        ("replace(v, '-', '')", "12-34-56", "123456"),
        ("replace(v, 'a', 'b')", None, None),
        # default: null and "" both take the fallback
        ("default(v, 'EUR')", None, "EUR"),
        ("default(v, 'EUR')", "", "EUR"),
        ("default(v, 'EUR')", "SEK", "SEK"),
        ("default(v, 'EUR')", 0, 0),  # zero is a value
        ("default(v, 'EUR')", False, False),  # so is false
        ("default(v, 'EUR')", [], []),  # and an empty list
        # coalesce: the first non-null, "" included
        ("coalesce(v, 'DHL', 'UPS')", None, "DHL"),
        ("coalesce(v, 'DHL')", "", ""),
        ("coalesce(v, `null`)", None, None),
        # number: strict reading of numeric text
        ("number(v)", "12.5", 12.5),
        ("number(v)", "-3", -3),
        ("number(v)", "+7", 7),
        ("number(v)", "007", 7),
        ("number(v)", "1e3", 1000.0),
        ("number(v)", "-2.5E-2", -0.025),
        ("number(v)", 42, 42),  # numbers pass through
        ("number(v)", 4.2, 4.2),
        ("number(v)", None, None),
        # split
        ("split(v, ';')", "A;B;C", ["A", "B", "C"]),
        ("split(v, ';')", "A", ["A"]),
        ("split(v, ';')", "", [""]),
        ("split(v, ';')", None, None),
        # substring: 0-based, negative start from the end, clamped to the text
        ("substring(v, `1`, `3`)", "ABCDEF", "BCD"),
        ("substring(v, `1`)", "ABCDEF", "BCDEF"),
        ("substring(v, `-2`)", "ABCDEF", "EF"),
        ("substring(v, `-3`, `2`)", "ABCDEF", "DE"),
        ("substring(v, `4`, `10`)", "ABCDEF", "EF"),
        ("substring(v, `10`)", "ABCDEF", ""),
        ("substring(v, `0`, `0`)", "ABCDEF", ""),
        ("substring(v, `1`)", None, None),
    ],
)
def test_function_results(expression: str, value: Any, expected: Any) -> None:
    result = search(expression, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "value", "message"),
    [
        # dates: text that is not ISO-8601, empty text, other types, out of range
        ("sf_date(v)", "01/05/2024", 'sf_date(): "01/05/2024" is not an ISO-8601 date or time'),
        ("sf_date(v)", "", 'sf_date(): "" is not an ISO-8601 date or time'),
        ("sf_date(v)", "1714557600000", "is not an ISO-8601 date or time"),  # use number()
        ("sf_date(v)", True, "sf_date(): true is neither epoch milliseconds nor ISO-8601 text"),
        ("sf_date(v)", {"d": 1}, 'sf_date(): {"d": 1} is neither epoch milliseconds'),
        ("sf_datetime(v)", [1], "sf_datetime(): [1] is neither epoch milliseconds"),
        ("sf_datetime(v)", 1e20, "sf_datetime(): 1e+20 is out of range for epoch milliseconds"),
        ("sf_datetime(v)", "2024-13-01", "is not an ISO-8601 date or time"),
        (
            "sf_datetime(v)",
            "0001-01-01T00:00:00+01:00",  # an ISO time, but before year 1 in UTC
            'sf_datetime(): "0001-01-01T00:00:00+01:00" is out of range once in UTC',
        ),
        # case and trim take text only (JMESPath's own type check)
        ("upper(v)", 42, "In function upper(), invalid type for value: 42"),
        ("lower(v)", ["A"], "In function lower(), invalid type for value: ['A']"),
        ("trim(v)", 1, "In function trim(), invalid type for value: 1"),
        # concat refuses what has no obvious text
        ("concat('A', v)", True, "concat(): true is not a string, number or null"),
        ("concat('A', 'B', v)", {"a": 1}, 'concat(): {"a": 1} is not a string, number or null'),
        # replace and split need something to look for
        ("replace(v, '', 'x')", "abc", "replace(): the text to replace cannot be empty"),
        ("split(v, '')", "abc", "split(): the separator cannot be empty"),
        # number is strict where to_number would answer null
        ("number(v)", "1,234.50", 'number(): "1,234.50" is not a number'),
        ("number(v)", "12,5", 'number(): "12,5" is not a number'),
        ("number(v)", " 12", 'number(): " 12" is not a number'),
        ("number(v)", "", 'number(): "" is not a number'),
        ("number(v)", "abc", 'number(): "abc" is not a number'),
        ("number(v)", "NaN", 'number(): "NaN" is not a number'),
        ("number(v)", "Infinity", 'number(): "Infinity" is not a number'),
        ("number(v)", "1_000", 'number(): "1_000" is not a number'),
        ("number(v)", "١٢", 'number(): "١٢" is not a number'),  # digits, but not ASCII ones
        ("number(v)", "1e999", 'number(): "1e999" is too large for a number'),
        ("number(v)", True, "number(): true is not a number"),
        ("number(v)", [1], "number(): [1] is not a number"),
        # substring wants whole numbers and at most three arguments
        ("substring('abc', v)", 1.5, "substring(): 1.5 is not a whole number for start"),
        ("substring('abc', `0`, v)", -1, "substring(): -1 is not a length"),
        ("substring('abc', `0`, v)", True, "substring(): true is not a length"),
        ("substring('abc', `0`, `1`, v)", 1, "substring() takes 2 or 3 arguments, got 4"),
        # arity is checked too
        ("concat(v)", "a", "Expected at least 2 arguments for function concat(), received 1"),
    ],
)
def test_function_errors(expression: str, value: Any, message: str) -> None:
    with pytest.raises(JMESPathError) as caught:
        search(expression, value)
    assert message in str(caught.value)


def test_long_values_are_cut_short_in_error_messages() -> None:
    with pytest.raises(JMESPathError, match=r"number\(\): \"x{76}\.\.\. is not a number"):
        search("number(v)", "x" * 10_000)


#: Standard functions replaced, each by one that keeps the standard's answers for JSON values
#: (join and to_string refuse to make a text larger than MAX_VALUE_SIZE first).
REFINED = {"to_number", "join", "to_string"}


def test_custom_functions_add_to_the_standard_ones_replacing_only_the_refined() -> None:
    standard = Functions.FUNCTION_TABLE
    assert set(MappingFunctions.FUNCTION_TABLE) == set(standard) | CUSTOM
    assert not CUSTOM & set(standard)
    for name, spec in standard.items():
        same = MappingFunctions.FUNCTION_TABLE[name]["function"] is spec["function"]
        assert same is (name not in REFINED), name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 12),
        ("-3.5", -3.5),
        ("1e3", 1000.0),
        (7, 7),
        (2.5, 2.5),
        ("12,5", None),
        ("", None),
        (None, None),
        (True, None),
        ([1], None),
        # Python's float() reads these; JSON has no such numbers, so no record may get one.
        ("nan", None),
        ("inf", None),
        ("-Infinity", None),
        ("1e400", None),
        (" 5", None),
        ("1_000", None),
    ],
)
def test_to_number_gives_null_for_anything_but_a_json_number(value: Any, expected: Any) -> None:
    assert search("to_number(v)", value) == expected


@pytest.mark.parametrize(
    ("function", "given", "problem"),
    [
        ("upper", 1, None),  # right
        ("concat", 5, None),  # variadic: any number from its minimum
        ("substring", 2, None),  # the optional length left out
        ("substring", 3, None),
        ("substring", 4, "substring() takes 2 or 3 arguments, got 4"),
        ("substring", 1, "substring() takes 2 or 3 arguments, got 1"),
        ("join", 2, None),  # standard functions are known too
        ("upper", 2, "upper() takes 1 argument, got 2"),
        ("replace", 2, "replace() takes 3 arguments, got 2"),
        ("coalesce", 1, "coalesce() takes at least 2 arguments, got 1"),
        ("sf_dat", 1, "unknown function sf_dat()"),  # a typo
    ],
)
def test_arity_problem(function: str, given: int, problem: str | None) -> None:
    assert arity_problem(function, given) == problem


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("A-1", "A-1"),  # text stays text
        (42, "42"),
        (42.0, "42"),  # JSON writers often send whole numbers as 42.0
        (-7.0, "-7"),
        (12.5, "12.5"),
        (1e20, "100000000000000000000"),  # whole, so no exponent
    ],
)
def test_as_text(value: str | float, text: str) -> None:
    assert as_text(value) == text


@given(st.integers(min_value=-62135596800000, max_value=253402300799999))
def test_sf_datetime_keeps_every_millisecond(milliseconds: int) -> None:
    text = search("sf_datetime(v)", milliseconds)
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo == UTC
    assert round(parsed.timestamp() * 1000) == milliseconds
    assert search("sf_date(v)", milliseconds) == text[:10]


@given(st.integers() | st.floats(allow_nan=False, allow_infinity=False))
def test_number_reads_back_what_json_writes(value: float) -> None:
    assert search("number(v)", json.dumps(value)) == value


def documented_examples() -> list[tuple[str, str]]:
    """Each ``expression => result`` line of the function documentation."""
    page = DOCS.read_text(encoding="utf-8")
    section = page[page.index("## Functions") :]
    blocks = re.findall(r"```text\n(.*?)```", section, re.S)
    pairs = (line.split(" => ", 1) for block in blocks for line in block.splitlines())
    return [(expression.strip(), result) for expression, result in pairs]


def test_every_custom_function_has_a_documented_example() -> None:
    documented = " ".join(expression for expression, _ in documented_examples())
    for name in CUSTOM:
        assert f"{name}(" in documented, name


@pytest.mark.parametrize(("expression", "result"), documented_examples())
def test_documented_examples_hold(expression: str, result: str) -> None:
    if result.startswith("error: "):
        with pytest.raises(JMESPathError) as caught:
            search(expression)
        assert str(caught.value) == result.removeprefix("error: ")
    else:
        assert search(expression) == json.loads(result)
