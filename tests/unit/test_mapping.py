"""Validating, compiling and planning mapping documents, and diffing plans, as a specification."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from importlib.resources import files
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gateway.errors import MappingError, ValidationFailed
from gateway.expressions import MAX_VALUE_SIZE
from gateway.mapping import (
    Expression,
    PlannedUpsert,
    compile_mapping,
    diff_plans,
    event_context,
    validate_document,
)
from gateway.targets.base import ParentLink, UpsertRequest

#: The example of the mapping format's documentation (MAPPINGS.md), verbatim.
EXAMPLE: dict[str, Any] = {
    "name": "xtnd-orders",
    "description": "XTND order actions to Order__c",
    "upserts": [
        {
            "key": "order",
            "object": "Order__c",
            "external_id_field": "XTND_Order_Number__c",
            "external_id": "payload.Details.OrderNumber",
            "when": "payload.Details.OrderType == 'NormalOrder'",
            "order_by": "event.received_at",
            "fields": {"Status__c": "event.type", "Warehouse__c": "payload.Details.Warehouse"},
        },
        {
            "key": "line",
            "object": "Order_Line__c",
            "for_each": "payload.Details.Order.Rows",
            "external_id_field": "XTND_Line_Key__c",
            "external_id": (
                "join('-', [to_string(payload.Details.Order.OrderNumber),"
                " to_string(item.Position)])"
            ),
            "parent": {"key": "order", "relationship": "Order__r"},
            "fields": {
                "Product_Number__c": "item.ProductNumber",
                "Quantity__c": "item.Unit.Quantity",
            },
        },
    ],
}

ORDER_LINK = ParentLink("Order__r", "XTND_Order_Number__c", "802624")


@pytest.fixture
def example() -> dict[str, Any]:
    """A copy of the example that a test may change."""
    return copy.deepcopy(EXAMPLE)


@pytest.fixture
def xtnd_payload() -> dict[str, Any]:
    """One XTND notification of an order with two rows, as the connector hands it over."""
    return {
        "Action": "OrderPicked",
        "Details": {
            "OrderNumber": "802624",
            "OrderType": "NormalOrder",
            "Warehouse": "ADR-1",
            "Order": {
                "OrderNumber": 802624,
                "Rows": [
                    {"Position": 10, "ProductNumber": "4340-001", "Unit": {"Quantity": 1}},
                    {"Position": 20, "ProductNumber": "4340-002", "Unit": {"Quantity": 3}},
                ],
            },
        },
    }


@pytest.fixture
def context_of() -> Callable[..., dict[str, Any]]:
    """Builds an evaluation context; event attributes can be overridden by keyword."""

    def build(payload: Any, **event: Any) -> dict[str, Any]:
        attributes = {
            "id": "evt-1",
            "type": "OrderPicked",
            "received_at": "2024-05-01T10:00:00.000Z",
            "group_id": "grp-1",
            "connector": "xtnd",
            "function": "orders",
            "group": {"name": "XTND Main", "external_id": "acct-1"},
        }
        return event_context(payload, **{**attributes, **event})

    return build


def single(**changes: Any) -> dict[str, Any]:
    """A one-upsert document over ``payload``; ``changes`` replace or add upsert keys."""
    upsert = {
        "key": "rec",
        "object": "Thing__c",
        "external_id_field": "Ext_Id__c",
        "external_id": "payload.id",
        "fields": {"Name": "payload.name"},
    }
    return {"name": "things", "upserts": [{**upsert, **changes}]}


def plan(document: dict[str, Any], payload: Any) -> list[PlannedUpsert]:
    context = event_context(
        payload,
        id="evt-1",
        type="t",
        received_at="2024-05-01T10:00:00Z",
        group_id="g",
        connector="c",
        function="f",
        group={"name": "Group", "external_id": None},
    )
    return compile_mapping(document).plan(context)


def problems(document: Any, name: str | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        validate_document(document, name=name)
    assert caught.value.status == 422
    return [(detail.path, detail.message) for detail in caught.value.details]


DELETE = object()


def edited(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``document`` with the value at a dotted path (``upserts.1.key``) replaced."""
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    target: Any = changed
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key: Any = int(last) if isinstance(target, list) else last
    if value is DELETE:
        del target[key]
    else:
        target[key] = value
    return changed


# Validation ---------------------------------------------------------------------------------


def test_the_shipped_schema_is_a_valid_json_schema() -> None:
    schema = json.loads(files("gateway.mapping").joinpath("schema.json").read_text("utf-8"))
    Draft202012Validator.check_schema(schema)


def test_the_documented_example_is_valid() -> None:
    validate_document(EXAMPLE, name="xtnd-orders")


@pytest.mark.parametrize(
    ("path", "value", "where", "message"),
    [
        # the document itself
        ("name", DELETE, "name", "is required"),
        ("name", "", "name", '"" does not match'),
        ("name", "xtnd orders", "name", '"xtnd orders" does not match'),
        ("name", "x" * 101, "name", "(101 characters) is longer than 100 characters"),
        ("description", 42, "description", "must be a string, not 42"),
        ("upserts", [], "upserts", "must not be empty"),
        ("upserts", {"key": "order"}, "upserts", "must be a list"),
        ("tags", ["a"], "tags", "is not a known key"),  # typos are caught, not ignored
        # an upsert's keys
        ("upserts.0.object", DELETE, "upserts[0].object", "is required"),
        ("upserts.0.external_id", DELETE, "upserts[0].external_id", "is required"),
        ("upserts.1.key", DELETE, "upserts[1].key", "is required"),
        ("upserts.1", "line", "upserts[1]", 'must be an object, not "line"'),
        ("upserts.0.forEach", "x", "upserts[0].forEach", "is not a known key"),
        ("upserts.0.object", "Order c", "upserts[0].object", '"Order c" does not match'),
        ("upserts.0.object", "1Order", "upserts[0].object", '"1Order" does not match'),
        ("upserts.0.external_id_field", "Ext-Id", "upserts[0].external_id_field", "match"),
        ("upserts.0.key", "order line", "upserts[0].key", '"order line" does not match'),
        ("upserts.0.when", "", "upserts[0].when", "must not be empty"),
        ("upserts.0.when", True, "upserts[0].when", "must be a string, not true"),
        # fields
        ("upserts.1.fields.Quantity__c", 5, "upserts[1].fields.Quantity__c", "must be a string"),
        ("upserts.1.fields.Quantity__c", "", "upserts[1].fields.Quantity__c", "must not be empty"),
        ("upserts.1.fields.Unit Price", "x", "upserts[1].fields.Unit Price", "does not match"),
        ("upserts.1.fields._Hidden", "x", "upserts[1].fields._Hidden", "does not match"),
        ("upserts.1.fields", ["a"], "upserts[1].fields", "must be an object"),
        (
            "upserts.1.fields.XTND_Line_Key__c",  # would be dropped from the body silently
            "item.Key",
            "upserts[1].fields.XTND_Line_Key__c",
            "is the external id field; set it with external_id",
        ),
        # parent links
        ("upserts.1.parent.relationship", DELETE, "upserts[1].parent.relationship", "required"),
        ("upserts.1.parent.relationship", "Order r", "upserts[1].parent.relationship", "match"),
        ("upserts.1.parent.key", "ordr", "upserts[1].parent.key", "no earlier upsert has"),
        ("upserts.1.parent.key", "line", "upserts[1].parent.key", "no earlier upsert has"),
        (
            "upserts.0.for_each",  # a parent must be one record
            "payload.Orders",
            "upserts[1].parent.key",
            "upsert 'order' has for_each, so there is no single record to point at",
        ),
        (
            "upserts.1.fields.Order__r",  # the link and a field would write one field twice
            "payload.Details.OrderNumber",
            "upserts[1].fields.Order__r",
            "is the parent's relationship field; the parent link sets it",
        ),
        # keys
        ("upserts.1.key", "order", "upserts[1].key", "'order' is already the key of upserts[0]"),
        # expressions: what does not parse, and calls it would only fail on evaluation
        (
            "upserts.0.external_id",
            "payload.Details.[",
            "upserts[0].external_id",
            'not a valid JMESPath expression: it ends too early\n"payload.Details.["',
        ),
        ("upserts.0.when", "payload.a = 'b'", "upserts[0].when", "Unknown token '='"),
        ("upserts.0.order_by", "event.", "upserts[0].order_by", "Parse error at column 6"),
        ("upserts.1.for_each", "payload.Rows[", "upserts[1].for_each", "not a valid JMESPath"),
        (
            "upserts.1.fields.Quantity__c",
            "numbr(item.Unit.Quantity)",
            "upserts[1].fields.Quantity__c",
            "unknown function numbr()",
        ),
        (
            "upserts.1.fields.Quantity__c",
            "number(item.Unit.Quantity, `1`)",
            "upserts[1].fields.Quantity__c",
            "number() takes 1 argument, got 2",
        ),
        (
            "upserts.0.fields.Status__c",
            "upper(to_string(sum([`1`])), 'x')",  # calls are found however deep they sit
            "upserts[0].fields.Status__c",
            "upper() takes 1 argument, got 2",
        ),
        # names: what an expression starts from, which would otherwise yield null for good
        (
            "upserts.0.external_id",
            "payloda.Details.OrderNumber",
            "upserts[0].external_id",
            "starts from 'payloda', which is not payload, event or item",
        ),
        (
            "upserts.0.fields.Status__c",
            "upper(Details.Status)",
            "upserts[0].fields.Status__c",
            "starts from 'Details', which is not payload, event or item",
        ),
        (
            "upserts.0.order_by",
            "event.recieved_at",
            "upserts[0].order_by",
            "event has no 'recieved_at' (it has id, type, received_at, group_id, connector,"
            " function, group)",
        ),
        (
            "upserts.0.when",
            "payload.Details.Rush == true",
            "upserts[0].when",
            "bare true is a name, which yields null; the literal is `true`",
        ),
    ],
)
def test_validation_problem(path: str, value: Any, where: str, message: str) -> None:
    found = problems(edited(EXAMPLE, path, value))
    assert [problem for problem in found if problem[0] == where and message in problem[1]], found


NO_ELEMENTS = "this upsert has no for_each, so there are no elements; use payload or add for_each"


@pytest.mark.parametrize(
    ("path", "value", "why"),
    [
        # when is checked once per event, before for_each: it would skip every element
        (
            "upserts.1.when",
            "item.Active",
            "when is checked once per event, before for_each; to skip some elements, filter"
            " them in for_each (payload.lines[?ok])",
        ),
        (
            "upserts.0.when",
            "payload.Details.Rush && item.Rush",
            "when is checked once per event, before for_each; to skip some elements, filter"
            " them in for_each (payload.lines[?ok])",
        ),
        (
            "upserts.1.for_each",
            "item.Rows",
            "for_each is evaluated once per event, before there are elements; use payload",
        ),
        # an upsert without for_each has no elements at all
        ("upserts.0.external_id", "item.OrderNumber", NO_ELEMENTS),
        ("upserts.0.fields.Status__c", "upper(item.Status)", NO_ELEMENTS),
        ("upserts.0.order_by", "not_null(item.At, payload.At)", NO_ELEMENTS),
    ],
)
def test_item_where_it_is_always_null_is_refused(path: str, value: Any, why: str) -> None:
    """``when: item.ok`` would silently skip every element: refused on save, not kept."""
    found = problems(edited(EXAMPLE, path, value))
    assert found == [
        (
            path.replace(".0.", "[0].").replace(".1.", "[1]."),
            f"starts from item, which is null here: {why}",
        )
    ]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("upserts.1.external_id", "item.Key"),  # the element of for_each
        ("upserts.1.order_by", "item.At"),
        ("upserts.1.when", "length(payload.Details.Rows[?item.Ok]) > `0`"),  # each row's key
        ("upserts.0.fields.Status__c", "payload.Items[].item"),  # a key of each element
    ],
)
def test_item_where_it_has_a_value_is_accepted(path: str, value: Any) -> None:
    validate_document(edited(EXAMPLE, path, value))


def test_a_saved_version_naming_item_in_when_still_compiles() -> None:
    """Versions saved before item was checked go on compiling; their events skip as before."""
    document = single(when="item.ok", for_each="payload.rows", external_id="item.id")
    explained = compile_mapping(document).explained_plan(
        event_context(
            {"rows": [{"id": "a", "ok": True}]},
            id="evt-1",
            type="t",
            received_at="2026-01-01T00:00:00Z",
            group_id=None,
            connector=None,
            function=None,
            group=None,
        )
    )
    assert [s.reason for s in explained.skipped] == ["when `item.ok` is null"]


@pytest.mark.parametrize(
    "expression",
    [
        "payload.Details.Order.Rows[?Position > `1`].ProductNumber",  # fields of each row
        "sort_by(payload.Details.Order.Rows, &Position)[0].ProductNumber",
        "{number: payload.Details.OrderNumber, at: event.received_at}",
        "payload.Details | OrderNumber",
        "payload.Details.Warehouse != null",  # bare null yields null, as the literal would
        "@.payload.Details.OrderNumber",
        "`1`",
    ],
)
def test_names_inside_an_expression_are_not_taken_for_where_it_starts(expression: str) -> None:
    validate_document(edited(EXAMPLE, "upserts.0.fields.Status__c", expression))


@pytest.mark.parametrize(
    "expression",
    ["payloda.name", "numbr(payload.name)", "upper(payload.name, 'x')", "payload.x == true"],
    ids=["unknown name", "unknown function", "wrong arity", "bare true"],
)
def test_a_version_saved_before_a_check_was_added_still_compiles(expression: str) -> None:
    document = single(fields={"Name": expression})
    with pytest.raises(ValidationFailed):
        validate_document(document)

    compiled = compile_mapping(document)

    assert compiled.version == 1


def test_compiling_still_refuses_what_it_cannot_compile() -> None:
    with pytest.raises(ValidationFailed, match="1 problem"):
        compile_mapping(single(fields={"Name": "payload.("}))


def test_a_document_that_is_not_an_object() -> None:
    assert problems(["xtnd-orders"]) == [("", 'must be an object, not ["xtnd-orders"]')]


def test_the_name_must_be_the_one_the_mapping_is_saved_under() -> None:
    assert problems(EXAMPLE, name="orders") == [
        ("name", "must be 'orders', the name the mapping is saved under")
    ]


def test_every_problem_is_reported_at_once() -> None:
    document = copy.deepcopy(EXAMPLE)
    document["upserts"][0]["external_id"] = "payload.("
    document["upserts"][0]["fields"]["Status"] = 7
    document["upserts"][1]["key"] = "order"
    document["upserts"][1]["object"] = "Order Line"
    document["upserts"][1]["parent"]["key"] = "customer"
    document["upserts"].append({"key": "x"})

    found = problems(document, name="other")

    assert [path for path, _ in found] == [
        "upserts[0].fields.Status",
        "upserts[1].object",
        "upserts[2].object",
        "upserts[2].external_id_field",
        "upserts[2].external_id",
        "name",
        "upserts[0].external_id",
        "upserts[1].parent.key",
        "upserts[1].key",
    ]
    with pytest.raises(ValidationFailed, match=r"^The mapping document has 9 problems\.$"):
        validate_document(document, name="other")


def test_validation_problems_are_details_of_the_error_body() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_document(edited(EXAMPLE, "upserts.0.key", DELETE))
    assert caught.value.body() == {
        "error": {
            "code": "validation_failed",
            "message": "The mapping document has 2 problems.",
            "details": [
                {"path": "upserts[0].key", "message": "is required"},
                {
                    "path": "upserts[1].parent.key",
                    "message": "no earlier upsert has the key 'order'",
                },
            ],
        }
    }


@pytest.mark.parametrize(
    "document",
    [
        single(fields={}),  # an upsert may only make sure its record exists
        edited(single(), "upserts.0.fields", DELETE),
        single(when="`true`", order_by="payload.version"),
        single(for_each="payload.rows", external_id="item.id"),
        single(fields={"First__c": "payload.rows[:1] | [0]"}),  # slices and pipes
    ],
)
def test_optional_parts(document: dict[str, Any]) -> None:
    validate_document(document)


def test_an_editor_schema_reference_is_allowed() -> None:
    validate_document({"$schema": "./mapping.schema.json", **EXAMPLE})


# Compiling ----------------------------------------------------------------------------------


def test_compile_mapping_validates_first() -> None:
    with pytest.raises(ValidationFailed) as caught:
        compile_mapping(edited(EXAMPLE, "upserts.0.when", "payload.("))
    assert [detail.path for detail in caught.value.details] == ["upserts[0].when"]


def test_a_compiled_mapping_keeps_its_own_copy_of_the_document(
    example: dict[str, Any], xtnd_payload: dict[str, Any], context_of: Callable[..., dict]
) -> None:
    compiled = compile_mapping(example, version=7)
    example["upserts"][0]["fields"]["Status__c"] = "'changed'"

    assert (compiled.name, compiled.version) == ("xtnd-orders", 7)
    assert compiled.document == EXAMPLE
    assert compiled.plan(context_of(xtnd_payload))[0].fields["Status__c"] == "OrderPicked"


def test_event_context_is_the_documented_evaluation_object() -> None:
    context = event_context(
        {"a": 1},
        id="evt-1",
        type="OrderPicked",
        received_at="2024-05-01T10:00:00Z",
        group_id="grp-1",
        connector="xtnd",
        function="orders",
        group={"name": "XTND Main", "external_id": "acct-1"},
    )
    assert context == {
        "payload": {"a": 1},
        "event": {
            "id": "evt-1",
            "type": "OrderPicked",
            "received_at": "2024-05-01T10:00:00Z",
            "group_id": "grp-1",
            "connector": "xtnd",
            "function": "orders",
            "group": {"name": "XTND Main", "external_id": "acct-1"},
        },
        "item": None,
    }


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("event.group.name", "XTND Main"),
        ("event.group.external_id", "acct-1"),
        ("join('/', [event.group.external_id, payload.id])", "acct-1/o-1"),
    ],
)
def test_a_mapping_reads_the_group_name_and_external_id(
    context_of: Callable[..., dict[str, Any]], expression: str, expected: str
) -> None:
    document = single(fields={"Source__c": expression})
    validate_document(document)
    planned = compile_mapping(document).plan(context_of({"id": "o-1", "name": "n"}))
    assert planned[0].fields["Source__c"] == expected


# Planning -----------------------------------------------------------------------------------


def test_the_documented_example_plans_an_order_and_its_lines(
    xtnd_payload: dict[str, Any], context_of: Callable[..., dict]
) -> None:
    planned = compile_mapping(EXAMPLE).plan(context_of(xtnd_payload))

    assert planned == [
        PlannedUpsert(
            key="order",
            object="Order__c",
            external_id_field="XTND_Order_Number__c",
            external_id="802624",
            fields={"Status__c": "OrderPicked", "Warehouse__c": "ADR-1"},
            parent=None,
            order_value="2024-05-01T10:00:00.000Z",
            guarded=True,
        ),
        PlannedUpsert(
            key="line",
            object="Order_Line__c",
            external_id_field="XTND_Line_Key__c",
            external_id="802624-10",
            fields={"Product_Number__c": "4340-001", "Quantity__c": 1},
            parent=ORDER_LINK,
            order_value=None,
        ),
        PlannedUpsert(
            key="line",
            object="Order_Line__c",
            external_id_field="XTND_Line_Key__c",
            external_id="802624-20",
            fields={"Product_Number__c": "4340-002", "Quantity__c": 3},
            parent=ORDER_LINK,
            order_value=None,
        ),
    ]


def test_a_planned_upsert_becomes_the_targets_request(
    xtnd_payload: dict[str, Any], context_of: Callable[..., dict]
) -> None:
    line = compile_mapping(EXAMPLE).plan(context_of(xtnd_payload))[1]

    request = line.request("evt-1")

    assert request == UpsertRequest(
        object="Order_Line__c",
        external_id_field="XTND_Line_Key__c",
        external_id="802624-10",
        fields={"Product_Number__c": "4340-001", "Quantity__c": 1},
        parent=ORDER_LINK,
        source_event_id="evt-1",
    )
    assert request.body()["Order__r"] == {"XTND_Order_Number__c": "802624"}


def test_when_false_skips_the_upsert_and_its_children(
    xtnd_payload: dict[str, Any], context_of: Callable[..., dict]
) -> None:
    xtnd_payload["Details"]["OrderType"] = "ReturnOrder"
    assert compile_mapping(EXAMPLE).plan(context_of(xtnd_payload)) == []


@pytest.mark.parametrize(
    ("changes", "skipped"),
    [
        # (payload changes, each skipped upsert with its reason)
        ({}, []),
        (
            {"OrderType": "ReturnOrder"},
            [
                ("order", "Order__c", "when `payload.Details.OrderType == 'NormalOrder'` is false"),
                ("line", "Order_Line__c", "its parent 'order' was skipped"),
            ],
        ),
        (
            {"Order": {"Rows": []}},
            [("line", "Order_Line__c", "for_each `payload.Details.Order.Rows` yields []")],
        ),
        (
            {"Order": None},
            [("line", "Order_Line__c", "for_each `payload.Details.Order.Rows` yields null")],
        ),
    ],
)
def test_an_explained_plan_says_why_each_skipped_upsert_makes_no_record(
    xtnd_payload: dict[str, Any],
    context_of: Callable[..., dict],
    changes: dict[str, Any],
    skipped: list[tuple[str, str, str]],
) -> None:
    xtnd_payload["Details"].update(changes)

    explained = compile_mapping(EXAMPLE).explained_plan(context_of(xtnd_payload))

    assert [(s.key, s.object, s.reason) for s in explained.skipped] == skipped
    assert explained.upserts == compile_mapping(EXAMPLE).plan(context_of(xtnd_payload))


def test_when_null_is_named_as_null(context_of: Callable[..., dict]) -> None:
    document = single(when="payload.flag")

    explained = compile_mapping(document).explained_plan(context_of({"id": "A-1"}))

    assert [s.reason for s in explained.skipped] == ["when `payload.flag` is null"]


def test_a_mapping_error_names_the_upsert_it_concerns(
    xtnd_payload: dict[str, Any], context_of: Callable[..., dict]
) -> None:
    xtnd_payload["Details"]["Order"]["Rows"][0]["Position"] = None
    document = copy.deepcopy(EXAMPLE)
    document["upserts"][1]["external_id"] = "item.Position"

    with pytest.raises(MappingError) as caught:
        compile_mapping(document).plan(context_of(xtnd_payload))

    assert caught.value.upsert_key == "line"


@pytest.mark.parametrize(
    ("when", "planned"),
    [
        ("`true`", 1),
        ("`false`", 0),
        ("payload.missing", 0),  # null skips, as a missing flag should
        ("payload.flag", 1),
        ("payload.id == 'A-1'", 1),
    ],
)
def test_when(when: str, planned: int) -> None:
    assert len(plan(single(when=when), {"id": "A-1", "flag": True})) == planned


@pytest.mark.parametrize(
    ("verdict", "shown"),
    [("'yes'", '"yes"'), ("`1`", "1"), ("payload", '{"id": "A-1"}'), ("`[true]`", "[true]")],
)
def test_when_skips_the_upsert_unless_it_is_true(
    verdict: str, shown: str, context_of: Callable[..., dict]
) -> None:
    explained = compile_mapping(single(when=verdict)).explained_plan(context_of({"id": "A-1"}))

    assert explained.upserts == []
    assert [s.reason for s in explained.skipped] == [f"when `{verdict}` is {shown}"]


def test_when_is_evaluated_once_per_event_before_for_each() -> None:
    document = single(when="item == null", for_each="payload.rows", external_id="item")
    assert [p.external_id for p in plan(document, {"rows": ["a", "b"]})] == ["a", "b"]


@pytest.mark.parametrize(
    ("rows", "external_ids"),
    [
        (["a", "b", "c"], ["a", "b", "c"]),  # one record per element, in order
        ([], []),
        (None, []),  # a missing list is no records, not an error
    ],
)
def test_for_each(rows: Any, external_ids: list[str]) -> None:
    document = single(for_each="payload.rows", external_id="item", fields={"Pos__c": "item"})
    planned = plan(document, {"rows": rows})
    assert [p.external_id for p in planned] == external_ids
    assert [p.fields["Pos__c"] for p in planned] == external_ids


@pytest.mark.parametrize("rows", ["a,b", {"a": 1}, 3])
def test_for_each_must_yield_a_list(rows: Any) -> None:
    with pytest.raises(MappingError, match=r"^upsert 'rec': for_each yields .+, not a list$"):
        plan(single(for_each="payload.rows", external_id="item"), {"rows": rows})


def test_for_each_sees_the_payload_and_leaves_the_callers_context_alone(
    context_of: Callable[..., dict],
) -> None:
    document = single(
        for_each="payload.rows",
        external_id="concat(payload.order, '-', item.pos)",
        fields={"Event__c": "event.id", "Item__c": "item.pos"},
    )
    context = context_of({"order": "O1", "rows": [{"pos": 1}, {"pos": 2}]})
    before = copy.deepcopy(context)

    planned = compile_mapping(document).plan(context)

    assert [(p.external_id, p.fields) for p in planned] == [
        ("O1-1", {"Event__c": "evt-1", "Item__c": 1}),
        ("O1-2", {"Event__c": "evt-1", "Item__c": 2}),
    ]
    assert context == before


def test_children_of_a_parent_without_lines_still_get_their_parent(
    xtnd_payload: dict[str, Any], context_of: Callable[..., dict]
) -> None:
    del xtnd_payload["Details"]["Order"]
    planned = compile_mapping(EXAMPLE).plan(context_of(xtnd_payload))
    assert [p.key for p in planned] == ["order"]


def test_a_child_of_a_skipped_grandparent_is_skipped() -> None:
    document = single(when="payload.wanted")
    document["upserts"] += [
        {
            "key": "child",
            "object": "Child__c",
            "external_id_field": "Ext_Id__c",
            "external_id": "'C'",
            "parent": {"key": "rec", "relationship": "Rec__r"},
        },
        {
            "key": "grandchild",
            "object": "Grandchild__c",
            "external_id_field": "Ext_Id__c",
            "external_id": "'G'",
            "parent": {"key": "child", "relationship": "Child__r"},
        },
    ]
    assert plan(document, {"id": "A", "wanted": False}) == []
    planned = plan(document, {"id": "A", "wanted": True})
    assert [p.parent for p in planned] == [
        None,
        ParentLink("Rec__r", "Ext_Id__c", "A"),
        ParentLink("Child__r", "Ext_Id__c", "C"),
    ]


def test_null_fields_are_sent_as_null() -> None:
    planned = plan(single(fields={"Name": "payload.name", "Note__c": "`null`"}), {"id": "A"})
    assert planned[0].fields == {"Name": None, "Note__c": None}
    assert planned[0].request(None).body() == {"Name": None, "Note__c": None}


@pytest.mark.parametrize(
    ("value", "external_id"),
    [
        ("A-1", "A-1"),
        (42, "42"),  # numbers become text
        (42.0, "42"),  # a whole float without its .0
        (12.5, "12.5"),
        (0, "0"),  # zero is an id, not a missing one
        (" A-1 ", " A-1 "),  # text is taken as it is, unless blank
    ],
)
def test_external_ids_are_text(value: Any, external_id: str) -> None:
    assert plan(single(), {"id": value})[0].external_id == external_id


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "upsert 'rec': external id is null"),
        ("", "upsert 'rec': external id is empty"),
        ("   ", "upsert 'rec': external id is blank (\"   \")"),
        ("\t\n", "upsert 'rec': external id is blank (\"\\t\\n\")"),
        (True, "upsert 'rec': external id is true, not a string or number"),
        (["A"], "upsert 'rec': external id is [\"A\"], not a string or number"),
        ({"id": 1}, "upsert 'rec': external id is {\"id\": 1}, not a string or number"),
        (float("nan"), "upsert 'rec': external id is NaN, not a string or number"),
    ],
)
def test_an_external_id_that_is_no_id_fails_the_event(value: Any, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        plan(single(), {"id": value})
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("expression", "payload", "message"),
    [
        (
            "sum(payload.amounts)",
            {"amounts": [1e308, 1e308]},
            "upsert 'rec': fields.Total__c yields Infinity: JSON has no infinite or NaN"
            " numbers, so no target can store it",
        ),
        (
            "[payload.a, payload.missing]",
            {"a": 1e308},
            None,  # no non-finite value: a plain list is written as it is
        ),
        (
            "[sum(payload.amounts)]",
            {"amounts": [1e308, 1e308]},
            "upsert 'rec': fields.Total__c yields [Infinity]: JSON has no infinite or NaN"
            " numbers, so no target can store it",
        ),
    ],
    ids=["overflowing sum", "finite list", "list holding an overflow"],
)
def test_a_field_that_yields_a_number_json_cannot_write_fails_the_event(
    expression: str, payload: dict[str, Any], message: str | None
) -> None:
    document = single(external_id="'A-1'", fields={"Total__c": expression})
    if message is None:
        assert plan(document, payload)[0].fields == {"Total__c": [1e308, None]}
        return
    with pytest.raises(MappingError) as caught:
        plan(document, payload)
    assert caught.value.message == message


def test_an_order_by_that_overflows_fails_the_event() -> None:
    document = single(order_by="sum(payload.versions)")
    with pytest.raises(MappingError, match=r"^upsert 'rec': order_by yields Infinity, not a fin"):
        plan(document, {"id": "A-1", "versions": [1e308, 1e308]})


@pytest.mark.parametrize(
    ("expression", "payload", "expected"),
    [
        ("payload.n > `5`", {"n": "x"}, None),  # jmespath itself raises TypeError here
        ("payload.n < `5`", {"n": True}, None),
        ("payload.n >= payload.m", {"n": [1], "m": [0]}, None),
        ("payload.n > `5`", {"n": 6}, True),
        ("payload.n < 'b'", {"n": "a"}, True),
        ("payload.n == `5`", {"n": "5"}, False),
    ],
)
def test_ordering_unlike_values_yields_null_as_the_jmespath_specification_says(
    expression: str, payload: dict[str, Any], expected: Any
) -> None:
    document = single(external_id="'A-1'", fields={"Verdict__c": expression})
    assert plan(document, payload)[0].fields["Verdict__c"] is expected


@pytest.mark.parametrize(
    "expression",
    ["max_by(payload.rows, &v)", "payload.rows[::0]", "floor(payload.nan)"],
    ids=["max_by over mixed types", "slice step of zero", "floor of NaN"],
)
def test_an_expression_python_cannot_evaluate_fails_the_event_not_the_worker(
    expression: str,
) -> None:
    document = single(external_id="'A-1'", fields={"X__c": expression})
    payload = {"rows": [{"v": 1}, {"v": "a"}], "nan": float("nan")}

    with pytest.raises(MappingError, match=r"^upsert 'rec': fields\.X__c: cannot be evaluated"):
        plan(document, payload)


def test_the_documented_example_fails_an_order_without_number(
    xtnd_payload: dict[str, Any], context_of: Callable[..., dict]
) -> None:
    del xtnd_payload["Details"]["OrderNumber"]
    with pytest.raises(MappingError, match=r"^upsert 'order': external id is null$"):
        compile_mapping(EXAMPLE).plan(context_of(xtnd_payload))


def test_an_error_in_a_line_says_which_element() -> None:
    document = single(for_each="payload.rows", external_id="item.id")
    with pytest.raises(MappingError, match=r"^upsert 'rec': external id is empty \(item 1\)$"):
        plan(document, {"rows": [{"id": "a"}, {"id": ""}]})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"Total__c": "number(payload.total)"},
            "upsert 'rec': fields.Total__c: number(): \"12,50\" is not a number",
        ),
        (
            {"Day__c": "sf_date(payload.total)"},
            "upsert 'rec': fields.Day__c: sf_date(): \"12,50\" is not an ISO-8601 date or time",
        ),
        (
            {"Name": "upper(payload.count)"},
            "upsert 'rec': fields.Name: In function upper(), invalid type for value: 3",
        ),
    ],
)
def test_a_function_error_fails_the_event_naming_upsert_field_and_value(
    fields: dict[str, str], message: str
) -> None:
    with pytest.raises(MappingError) as caught:
        plan(single(fields=fields), {"id": "A", "total": "12,50", "count": 3})
    assert caught.value.message.startswith(message)
    assert caught.value.code == "mapping_error"


def test_an_error_in_another_part_names_that_part() -> None:
    with pytest.raises(MappingError, match=r"^upsert 'rec': external_id: number\(\): "):
        plan(single(external_id="number(payload.id)"), {"id": "A"})


@pytest.mark.parametrize(
    ("order_by", "payload", "order_value"),
    [
        ("payload.version", {"id": "A", "version": 7}, 7),
        ("payload.updated", {"id": "A", "updated": "2024-05-01T10:00:00Z"}, "2024-05-01T10:00:00Z"),
        ("payload.version", {"id": "A"}, None),  # nothing to compare: left to the caller
    ],
)
def test_order_by(order_by: str, payload: dict[str, Any], order_value: Any) -> None:
    assert plan(single(order_by=order_by), payload)[0].order_value == order_value


def test_without_order_by_there_is_no_order_value() -> None:
    assert plan(single(), {"id": "A"})[0].order_value is None


def test_order_by_is_evaluated_per_element() -> None:
    document = single(for_each="payload.rows", external_id="item.id", order_by="item.v")
    planned = plan(document, {"rows": [{"id": "a", "v": 2}, {"id": "b", "v": 1}]})
    assert [p.order_value for p in planned] == [2, 1]


@pytest.mark.parametrize("version", [True, [1], {"v": 1}])
def test_order_by_must_yield_a_number_or_string(version: Any) -> None:
    with pytest.raises(MappingError, match=r"^upsert 'rec': order_by yields .+, not a finite num"):
        plan(single(order_by="payload.version"), {"id": "A", "version": version})


def test_a_compiled_mapping_plans_many_events_the_same_way(
    xtnd_payload: dict[str, Any], context_of: Callable[..., dict]
) -> None:
    compiled = compile_mapping(EXAMPLE)
    first = compiled.plan(context_of(xtnd_payload))
    compiled.plan(context_of({"Details": {"OrderNumber": "X", "OrderType": "NormalOrder"}}))
    assert compiled.plan(context_of(xtnd_payload)) == first


# Preview diffs ------------------------------------------------------------------------------


def record(external_id: str, sobject: str = "Order__c", **fields: Any) -> PlannedUpsert:
    """A planned upsert of ``sobject`` with ``fields``, for diffing."""
    return PlannedUpsert(
        key="order",
        object=sobject,
        external_id_field="Ext_Id__c",
        external_id=external_id,
        fields=fields,
        parent=None,
        order_value=None,
    )


def test_diff_of_identical_plans_is_empty() -> None:
    same = [record("A", Status__c="Picked"), record("1", "Line__c", Qty__c=1)]
    assert diff_plans(same, list(same)) == []


def test_diff_reports_added_changed_and_removed_records_in_a_stable_order() -> None:
    current = [
        record("A", Status__c="Picked", Warehouse__c="ADR-1"),
        record("B", Status__c="Picked"),
        record("C", Status__c="Picked"),
    ]
    candidate = [
        record("D", Status__c="Reserved", Note__c=None),
        record("C", Status__c="Picked"),
        record("A", Status__c="Reserved", Warehouse__c="ADR-1", Carrier__c="DHL"),
    ]

    assert diff_plans(current, candidate) == [
        {
            "change": "added",
            "object": "Order__c",
            "external_id": "D",
            "fields": {"Status__c": {"after": "Reserved"}, "Note__c": {"after": None}},
        },
        {
            "change": "changed",
            "object": "Order__c",
            "external_id": "A",
            "fields": {
                "Status__c": {"before": "Picked", "after": "Reserved"},
                "Carrier__c": {"after": "DHL"},  # not sent before
            },
        },
        {
            "change": "removed",
            "object": "Order__c",
            "external_id": "B",
            "fields": {"Status__c": {"before": "Picked"}},
        },
    ]


def test_diff_tells_records_apart_by_object_and_external_id() -> None:
    changes = diff_plans([record("1", "Order__c")], [record("1", "Invoice__c")])
    assert [(c["change"], c["object"]) for c in changes] == [
        ("added", "Invoice__c"),
        ("removed", "Order__c"),
    ]


def test_diff_shows_a_changed_parent_as_its_relationship_field() -> None:
    before = record("L1", "Line__c", Qty__c=1)
    after = dataclasses.replace(before, parent=ParentLink("Order__r", "Num__c", "O2"))
    assert diff_plans([before], [after])[0]["fields"] == {"Order__r": {"after": {"Num__c": "O2"}}}


def test_diff_merges_repeated_upserts_of_one_record_as_the_target_would() -> None:
    current = [record("A", Status__c="Picked")]
    candidate = [record("A", Status__c="Reserved"), record("A", Status__c="Picked")]
    assert diff_plans(current, candidate) == []


def test_diff_of_the_documented_example_against_a_changed_version(
    xtnd_payload: dict[str, Any], context_of: Callable[..., dict]
) -> None:
    context = context_of(xtnd_payload)
    candidate = edited(EXAMPLE, "upserts.1.fields.Quantity__c", "to_string(item.Unit.Quantity)")

    changes = diff_plans(
        compile_mapping(EXAMPLE).plan(context), compile_mapping(candidate).plan(context)
    )

    assert [(c["change"], c["external_id"], c["fields"]) for c in changes] == [
        ("changed", "802624-10", {"Quantity__c": {"before": 1, "after": "1"}}),
        ("changed", "802624-20", {"Quantity__c": {"before": 3, "after": "3"}}),
    ]


def piped(step: str, times: int = 40) -> str:
    """``v`` through ``step`` again and again: each pass doubles the value it is given."""
    return "v" + f" | {step}" * times


THOUSAND_A = "'" + "a" * 1000 + "'"


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        pytest.param(
            f"replace(replace(replace(v, 'a', {THOUSAND_A}), 'a', {THOUSAND_A}), 'a', 'b')",
            "a" * 99,
            id="replace",
        ),
        pytest.param(piped("concat(@, @)"), "a" * 1000, id="concat"),
        pytest.param(piped("join('', [@, @])"), "a" * 1000, id="join"),
        pytest.param(piped("to_string({a: @, b: @})"), "a", id="to_string"),
        pytest.param(piped("[@, @][]"), ["a"], id="flatten"),
        # shares its halves, so it stays small until written out or compared
        pytest.param(piped("[@, @]"), "a", id="result"),
        pytest.param(f"({piped('[@, @]')}) == ({piped('[@, @]')})", "a", id="comparison"),
        pytest.param("v", "a" * (MAX_VALUE_SIZE + 1), id="text"),
    ],
)
def test_an_expression_cannot_make_a_value_exponentially_large(expression: str, value: Any) -> None:
    """Refused within a second with the mapping's error, not by running out of memory."""
    with pytest.raises(MappingError, match=r"^fields\.Name: .*(larger than|would make a text)"):
        Expression(expression, "fields.Name").evaluate({"v": value})
