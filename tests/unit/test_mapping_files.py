"""Reading mapping documents from a directory of JSON and YAML files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.errors import ValidationFailed
from gateway.mapping import compile_mapping
from gateway.mapping.files import load_mapping_files

ORDERS_YAML = """\
name: xtnd-orders
description: XTND order actions to Order__c
upserts:
  - key: order
    object: Order__c
    external_id_field: XTND_Order_Number__c
    external_id: payload.Details.OrderNumber
    when: "payload.Details.OrderType == 'NormalOrder'"
    fields:
      Status__c: event.type
      Source__c: "'XTND'"
"""

STOCK = {
    "upserts": [
        {
            "key": "balance",
            "object": "Stock__c",
            "external_id_field": "Product_Number__c",
            "external_id": "payload.Details.ProductNumber",
        }
    ]
}


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    """A mappings directory with one JSON file, one YAML file and a file that is no mapping."""
    (tmp_path / "stock.json").write_text(json.dumps(STOCK), encoding="utf-8")
    (tmp_path / "orders.yaml").write_text(ORDERS_YAML, encoding="utf-8")
    (tmp_path / "README.md").write_text("# Mappings\n", encoding="utf-8")
    return tmp_path


def problems_of(directory: Path) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        load_mapping_files(directory)
    return [(detail.path, detail.message) for detail in caught.value.details]


def test_json_and_yaml_files_are_read_in_name_order(directory: Path) -> None:
    loaded = load_mapping_files(directory)

    assert [path.name for path, _ in loaded] == ["orders.yaml", "stock.json"]
    assert loaded[0][1]["upserts"][0]["fields"] == {
        "Status__c": "event.type",
        "Source__c": "'XTND'",
    }


def test_a_document_without_a_name_takes_the_file_stem(directory: Path) -> None:
    names = [document["name"] for _, document in load_mapping_files(directory)]
    assert names == ["xtnd-orders", "stock"]


def test_loaded_documents_compile(directory: Path) -> None:
    for _, document in load_mapping_files(directory):
        compile_mapping(document)


@pytest.mark.parametrize("suffix", [".yml", ".YAML", ".Json"])
def test_every_mapping_suffix_counts(tmp_path: Path, suffix: str) -> None:
    (tmp_path / f"stock{suffix}").write_text(json.dumps(STOCK), encoding="utf-8")
    assert [path.name for path, _ in load_mapping_files(tmp_path)] == [f"stock{suffix}"]


def test_an_empty_directory_has_no_mappings(tmp_path: Path) -> None:
    assert load_mapping_files(tmp_path) == []


def test_a_directory_named_like_a_mapping_file_is_skipped(directory: Path) -> None:
    (directory / "old.json").mkdir()
    assert len(load_mapping_files(directory)) == 2


def problems_and_message(directory: Path) -> tuple[list[tuple[str, str]], str]:
    with pytest.raises(ValidationFailed) as caught:
        load_mapping_files(directory)
    found = [(detail.path, detail.message) for detail in caught.value.details]
    return found, caught.value.message


@pytest.mark.parametrize(
    ("file_name", "content", "message"),
    [
        # syntax errors say where, on one line, as the parser found them
        (
            "broken.json",
            '{"name": "x", "upserts": [',
            "cannot be parsed: line 1, column 27: Expecting value",
        ),
        (
            "broken.yaml",
            "name: x\nupserts: [\n",
            "cannot be parsed: line 3, column 1: while parsing a flow node, expected the node"
            " content, but found '<stream end>'",
        ),
        (
            "tabs.yml",
            "name: x\n\tupserts: []\n",
            "cannot be parsed: line 2, column 1: while scanning for the next token, found"
            " character '\\t' that cannot start any token",
        ),
        (
            "two.yaml",
            "name: a\n---\nname: b\n",
            "cannot be parsed: line 2, column 1: expected a single document in the stream,"
            " but found another document",
        ),
        (
            "nul.yaml",
            "name: \x00",
            "cannot be parsed: unacceptable character #x0000: special characters are not allowed",
        ),
        # a key given twice: the parsers would keep the last without a word
        (
            "twice.yaml",
            "name: x\nupserts: []\nname: y\n",
            'cannot be parsed: line 3, column 1: the key "name" appears twice',
        ),
        (
            "twice.json",
            '{"name": "x", "upserts": [], "name": "y"}',
            'cannot be parsed: the key "name" appears twice in one object',
        ),
        ("nan.json", '{"name": NaN}', "cannot be parsed: NaN is not a JSON number"),
        # aliases of aliases: nine lines that validating would write out as 9**9 strings
        (
            "laughs.yaml",
            "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
            + "".join(
                f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n"
                for a, b in zip("abcdefgh", "bcdefghi", strict=True)
            )
            + "description: *i\nupserts: []\n",
            "cannot be parsed: line 2, column 8: aliases (*name) are not allowed",
        ),
        ("list.json", '["xtnd-orders"]', "must hold one mapping (an object)"),
        ("empty.yaml", "", "must hold one mapping (an object)"),
        ("latin1.json", b'{"name": "caf\xe9"}', "cannot be parsed: 'utf-8' codec"),
        # a document the admin API would refuse: its problems as PUT gives them
        ("odd.json", json.dumps({**STOCK, "name": 5}), "name: must be a string, not 5"),
        (
            "nosuch.json",
            json.dumps({"upserts": [dict(STOCK["upserts"][0], external_id="nosuch(payload)")]}),
            "upserts[0].external_id: unknown function nosuch()",
        ),
    ],
)
def test_a_file_that_cannot_be_loaded_is_named(
    directory: Path, file_name: str, content: str | bytes, message: str
) -> None:
    path = directory / file_name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")

    [(where, problem)] = problems_of(directory)

    assert where == file_name
    assert problem.startswith(message)


FIELD_ON = ORDERS_YAML + "      {key}: payload.Details.Flag\n"


@pytest.mark.parametrize(
    ("key", "read_as"),
    [
        ("on", "a boolean (true)"),
        ("yes", "a boolean (true)"),
        ("Off", "a boolean (false)"),
        ("NO", "a boolean (false)"),
        ("null", "null"),
        ("12", "a number"),
        ("2026-01-01", "a date"),
    ],
)
def test_an_unquoted_key_yaml_reads_as_no_text_is_named_with_its_quoting(
    directory: Path, key: str, read_as: str
) -> None:
    """``on:`` is true to YAML: say so and how to quote it, not ``fields[True]``."""
    (directory / "orders.yaml").write_text(FIELD_ON.format(key=key), encoding="utf-8")

    found = problems_of(directory)

    assert found[0] == (
        "orders.yaml",
        f"upserts[0].fields.{key}: line 12: YAML reads the unquoted key {key} as {read_as},"
        f' not as text; quote it: "{key}"',
    )
    assert not any("[True]" in message or "[False]" in message for _, message in found)


def test_a_quoted_key_that_yaml_would_read_as_a_boolean_is_a_field(directory: Path) -> None:
    (directory / "orders.yaml").write_text(FIELD_ON.format(key='"on"'), encoding="utf-8")

    [(_, orders), _] = load_mapping_files(directory)

    assert orders["upserts"][0]["fields"]["on"] == "payload.Details.Flag"


def test_a_misread_top_level_key_is_named_beside_the_documents_problems(directory: Path) -> None:
    (directory / "orders.yaml").write_text(ORDERS_YAML + "yes: 1\n", encoding="utf-8")

    assert problems_of(directory) == [
        (
            "orders.yaml",
            "yes: line 12: YAML reads the unquoted key yes as a boolean (true), not as text;"
            ' quote it: "yes"',
        ),
        ("orders.yaml", "yes: is not a known key"),
    ]


def test_every_problem_of_every_file_is_reported_at_once(directory: Path) -> None:
    (directory / "a.json").write_text("{", encoding="utf-8")
    (directory / "b.yaml").write_text("[", encoding="utf-8")
    (directory / "c.json").write_text('{"upserts": [{"key": "k"}]}', encoding="utf-8")

    found, message = problems_and_message(directory)

    assert found == [
        (
            "a.json",
            "cannot be parsed: line 1, column 2: Expecting property name enclosed in double quotes",
        ),
        (
            "b.yaml",
            "cannot be parsed: line 1, column 2: while parsing a flow node, expected"
            " the node content, but found '<stream end>'",
        ),
        ("c.json", "upserts[0].object: is required"),
        ("c.json", "upserts[0].external_id_field: is required"),
        ("c.json", "upserts[0].external_id: is required"),
    ]
    assert message == "3 of 5 mapping files cannot be loaded, so none was loaded."


def test_two_files_with_one_name_are_reported(directory: Path) -> None:
    (directory / "zz-orders.json").write_text(
        json.dumps({**STOCK, "name": "xtnd-orders"}), encoding="utf-8"
    )
    assert problems_of(directory) == [
        ("zz-orders.json", "uses the name 'xtnd-orders' of orders.yaml")
    ]
