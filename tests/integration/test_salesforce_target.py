"""The Salesforce target, with the real simple-salesforce client, against the fake org over TLS.

Every test starts its own fake on 127.0.0.1 with a CA made for it; logins to
``*.salesforce.com`` reach the fake through the session's transport, so the client's own URL
building, JSON and error handling all run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import REGISTRY

from gateway.errors import TargetError, TransientTargetError
from gateway.targets.base import ParentLink, UpsertRequest
from gateway.targets.salesforce import AuthMode, SalesforceSettings, SalesforceTarget
from tests.fakes.salesforce import (
    DROPPED,
    REQUEST_LIMIT_EXCEEDED,
    SERVER_ERROR,
    SESSION_EXPIRED,
    TOO_MANY_REQUESTS,
    UNAVAILABLE,
    Credentials,
    FakeSalesforce,
    SObject,
    slow,
)

ACCOUNT_FIELDS = {"Name", "Industry", "AnnualRevenue", "Founded__c", "Synced_At__c"}
OBJECTS = [
    SObject(
        "Account",
        fields=frozenset(ACCOUNT_FIELDS),
        required=("Name",),
        key_prefix="001",
    ),
    SObject(
        "Contact",
        external_ids=("Ext__c",),
        fields=frozenset({"LastName", "Email"}),
        required=("LastName",),
        lookups={"Account": "Account"},
        key_prefix="003",
    ),
]
LOGIN_MODES = ["jwt_bearer", "client_credentials", "password"]


def account(external_id: str, **fields: Any) -> UpsertRequest:
    return UpsertRequest("Account", "External_Id__c", external_id, {"Name": "Acme", **fields})


def contact(external_id: str, parent: str) -> UpsertRequest:
    link = ParentLink("Account", "External_Id__c", parent)
    return UpsertRequest("Contact", "Ext__c", external_id, {"LastName": "Doe"}, parent=link)


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """An RSA key made for this run: the private half signs JWTs, the fake checks the public."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("jwt") / "connected-app.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public


@pytest.fixture
def fake(key_pair: tuple[Path, bytes]) -> Iterator[FakeSalesforce]:
    with FakeSalesforce(OBJECTS, Credentials(jwt_public_key=key_pair[1])) as fake:
        yield fake


@pytest.fixture
def connect(
    fake: FakeSalesforce, key_pair: tuple[Path, bytes]
) -> Iterator[Callable[..., SalesforceTarget]]:
    """Factory: a target for one login mode, its settings read from the environment."""
    sessions: list[requests.Session] = []

    def make(
        mode: str = "password",
        env: dict[str, str | None] | None = None,
        *,
        profile: str | None = None,
        **options: Any,
    ) -> SalesforceTarget:
        """``env`` overrides the mode's variables; a ``None`` value removes one."""
        variables = {**fake.env(mode, str(key_pair[0])), "SALESFORCE_TIMEOUT_S": "2", **(env or {})}
        settings = SalesforceSettings.from_env(
            {k: v for k, v in variables.items() if v is not None}, profile
        )
        sessions.append(fake.client_session())
        return SalesforceTarget(settings, session=sessions[-1], **options)

    yield make
    for session in sessions:
        session.close()


# -- logins -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "logins"),
    [
        pytest.param("session_id", {}, id="session-id"),  # no login: the id is used as is
        pytest.param("jwt_bearer", {"oauth_token": 1}, id="jwt"),  # assertion signed by the key
        # The Connected App's key and secret, at the org's My Domain.
        pytest.param("client_credentials", {"oauth_token": 1}, id="client-credentials"),
        pytest.param("password", {"soap_login": 1}, id="password"),  # SOAP, password + token
    ],
)
def test_each_login_mode_reaches_the_org(
    connect: Callable[..., SalesforceTarget],
    fake: FakeSalesforce,
    mode: str,
    logins: dict[str, int],
) -> None:
    target = connect(mode)

    [result] = target.upsert([account("A-1")])

    assert target.settings.auth_mode == mode
    assert result.ok and result.created and result.record_id
    assert fake.calls == Counter({"sobject_upsert": 1, **logins})
    assert target.api_calls == 1 + len(logins)


def test_a_target_without_a_session_makes_its_own_and_trusts_the_ca_bundle(
    fake: FakeSalesforce,
) -> None:
    # REQUESTS_CA_BUNDLE may name the system CAs; SALESFORCE_CA_BUNDLE must still win.
    target = SalesforceTarget(SalesforceSettings.from_env(fake.env("session_id")))
    try:
        assert target.upsert([account("A-1")])[0].ok
    finally:
        target.close()


@pytest.mark.parametrize(
    ("mode", "env", "expected"),
    [
        # The SOAP fault's code and message come through.
        pytest.param("password", {"SALESFORCE_PASSWORD": "wrong"}, "INVALID_LOGIN", id="password"),
        # A key file that cannot be read is named before any call is made.
        pytest.param(
            "jwt_bearer",
            {"SALESFORCE_PRIVATE_KEY_FILE": "/nonexistent/connected-app.key"},
            "SALESFORCE_PRIVATE_KEY_FILE '/nonexistent/connected-app.key'",
            id="jwt-key-file-missing",
        ),
        # OAuth errors come through the same way.
        pytest.param(
            "client_credentials",
            {"SALESFORCE_CONSUMER_SECRET": "wrong"},
            "invalid_grant",
            id="client-credentials",
        ),
    ],
)
def test_a_refused_login_is_an_error_the_admin_must_fix(
    connect: Callable[..., SalesforceTarget], mode: str, env: dict[str, str], expected: str
) -> None:
    target = connect(mode, env)

    with pytest.raises(TargetError, match=expected) as raised:
        target.upsert([account("A-1")])
    assert not isinstance(raised.value, TransientTargetError)


@pytest.mark.parametrize(
    ("mode", "env"),
    [
        pytest.param("password", {"SALESFORCE_PASSWORD": "wrong"}, id="password"),
        pytest.param("client_credentials", {"SALESFORCE_CONSUMER_SECRET": "wrong"}, id="oauth"),
    ],
)
def test_a_refused_login_is_not_tried_again_by_every_batch(
    connect: Callable[..., SalesforceTarget],
    fake: FakeSalesforce,
    mode: str,
    env: dict[str, str],
) -> None:
    now = [1000.0]
    target = connect(mode, env, clock=lambda: now[0], pause_s=300)
    with pytest.raises(TargetError, match="login failed"):
        target.upsert([account("A-1")])

    now[0] += 299
    with pytest.raises(TargetError, match=r"login failed.*tried again in 1 s") as raised:
        target.upsert([account("A-1")])
    assert not isinstance(raised.value, TransientTargetError)
    assert target.api_calls == 1

    now[0] += 2
    with pytest.raises(TargetError, match="login failed"):
        target.upsert([account("A-1")])
    assert target.api_calls == 2


def test_an_untrusted_certificate_is_an_error_naming_the_ca_bundle(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce
) -> None:
    target = connect("session_id", {"SALESFORCE_CA_BUNDLE": None})

    with pytest.raises(TargetError, match="SALESFORCE_CA_BUNDLE") as raised:
        target.upsert([account("A-1")])
    assert not isinstance(raised.value, TransientTargetError)
    assert fake.api_used == 0


# -- single records ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "updated_id_known"),
    [
        pytest.param("62.0", True, id="api-62"),  # an update answers 200 with created: false
        pytest.param("45.0", False, id="api-45"),  # an update answers 204 without a body
    ],
)
def test_a_record_is_created_then_updated(
    connect: Callable[..., SalesforceTarget],
    fake: FakeSalesforce,
    version: str,
    updated_id_known: bool,
) -> None:
    target = connect(env={"SALESFORCE_API_VERSION": version})

    [created] = target.upsert([account("A-1", Industry="Retail")])
    [updated] = target.upsert([account("A-1", Industry="Energy")])

    assert (created.ok, created.created) == (True, True)
    assert (updated.ok, updated.created) == (True, False)
    assert updated.record_id == (created.record_id if updated_id_known else None)
    [stored] = fake.records["Account"]
    assert stored["Industry"] == "Energy" and stored["Id"] == created.record_id
    assert "External_Id__c" not in fake.last_body["sobject_upsert"]


@pytest.mark.parametrize(
    "external_id",
    [
        pytest.param("A/1", id="slash"),  # would otherwise be read as another path segment
        pytest.param("what?", id="question-mark"),  # would otherwise start a query string
        pytest.param("#7", id="hash"),  # would otherwise start a fragment, never sent
        pytest.param("two words", id="space"),
        pytest.param("100%", id="percent"),  # would otherwise be read as an escape
        pytest.param("Zürich", id="non-ascii"),
    ],
)
def test_external_ids_are_escaped_in_the_url(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce, external_id: str
) -> None:
    [result] = connect().upsert([account(external_id)])

    assert result.ok and result.created
    assert [r["Id"] for r in fake.find("Account", "External_Id__c", external_id)] == [
        result.record_id
    ]


@pytest.mark.parametrize(
    "batch_size",
    [
        pytest.param(1, id="single-record"),  # serialised for SFType.upsert's json.dumps
        pytest.param(2, id="collection"),  # serialised for the collection's body
    ],
)
def test_dates_datetimes_and_decimals_are_sent_as_salesforce_reads_them(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce, batch_size: int
) -> None:
    fields = {
        "Founded__c": date(2020, 2, 29),
        "Synced_At__c": datetime(
            2024, 5, 1, 12, 30, 15, 250000, tzinfo=timezone(timedelta(hours=2))
        ),
        "AnnualRevenue": Decimal("1234567.89"),
    }
    batch = [account(f"A-{i}", **fields) for i in range(batch_size)]

    results = connect().upsert(batch)

    assert all(r.ok for r in results)
    body = fake.last_body["sobject_upsert" if batch_size == 1 else "collection_upsert"]
    sent = body if batch_size == 1 else body["records"][0]
    assert sent["Founded__c"] == "2020-02-29"
    assert sent["Synced_At__c"] == "2024-05-01T10:30:15.250Z"
    assert sent["AnnualRevenue"] == 1234567.89


def test_a_naive_datetime_is_taken_as_utc_and_a_whole_decimal_as_an_integer(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce
) -> None:
    batch = [account("A-1", Synced_At__c=datetime(2024, 5, 1, 8), AnnualRevenue=Decimal("5E+3"))]

    connect().upsert(batch)

    sent = fake.last_body["sobject_upsert"]
    assert sent["Synced_At__c"] == "2024-05-01T08:00:00.000Z"
    assert sent["AnnualRevenue"] == 5000 and isinstance(sent["AnnualRevenue"], int)


@pytest.mark.parametrize(
    ("seed", "request_", "error"),
    [
        # No such object in the org: the URL itself is not found.
        pytest.param(
            [],
            UpsertRequest("Nope__c", "External_Id__c", "N-1", {"Name": "x"}),
            "NOT_FOUND: The requested resource does not exist",
            id="unknown-object",
        ),
        # Name is a field, but not an external id: also 404.
        pytest.param(
            [],
            UpsertRequest("Account", "Name", "Acme", {}),
            "NOT_FOUND: The requested resource does not exist",
            id="not-an-external-id",
        ),
        # Two records share the external id: 300 with their URLs.
        pytest.param(
            [{"External_Id__c": "A-1", "Name": "One"}, {"External_Id__c": "A-1", "Name": "Two"}],
            account("A-1"),
            "MULTIPLE_CHOICES: several records have this external id (001",
            id="several-records-match",
        ),
        # A field the object does not have.
        pytest.param(
            [],
            account("A-1", Bogus__c=1),
            "INVALID_FIELD: No such column 'Bogus__c' on sobject of type Account",
            id="invalid-field",
        ),
        # A new record without a required field.
        pytest.param(
            [],
            UpsertRequest("Account", "External_Id__c", "A-1", {"Industry": "Retail"}),
            "REQUIRED_FIELD_MISSING: Required fields are missing: [Name] (fields: Name)",
            id="required-field-missing",
        ),
    ],
)
def test_a_refused_record_fails_alone_and_for_good(
    connect: Callable[..., SalesforceTarget],
    fake: FakeSalesforce,
    seed: list[dict[str, Any]],
    request_: UpsertRequest,
    error: str,
) -> None:
    for record in seed:
        fake.add_record("Account", **record)
    other = UpsertRequest("Contact", "Ext__c", "C-1", {"LastName": "Doe"})

    [refused, fine] = connect().upsert([request_, other])

    assert (refused.ok, refused.transient) == (False, False)
    assert refused.error is not None and refused.error.startswith(error), refused.error
    assert fine.ok


@pytest.mark.parametrize("batch_size", [1, 2], ids=["single-record", "collection"])
def test_a_record_locked_in_the_org_is_retried_alone(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce, batch_size: int
) -> None:
    target = connect()
    batch = [account(f"A-{i}") for i in range(batch_size)]
    target.upsert(batch)
    fake.lock("Account", "A-0")

    [locked, *others] = target.upsert(batch)

    assert (locked.ok, locked.transient) == (False, True)
    assert locked.error is not None and locked.error.startswith("UNABLE_TO_LOCK_ROW: ")
    assert all(r.ok for r in others)
    fake.lock("Account", "A-0", locked=False)
    assert all(r.ok for r in target.upsert(batch))


# -- relationships ----------------------------------------------------------------------------


def test_children_go_after_parents_upserted_in_the_same_batch(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce
) -> None:
    old_parent = fake.add_record("Account", External_Id__c="A-OLD", Name="Old")
    batch = [contact("C-0", parent="A-OLD"), account("A-NEW"), contact("C-1", parent="A-NEW")]

    results = connect().upsert(batch)

    assert [r.ok for r in results] == [True, True, True]
    [c0] = fake.find("Contact", "Ext__c", "C-0")
    [c1] = fake.find("Contact", "Ext__c", "C-1")
    assert c0["AccountId"] == old_parent
    assert c1["AccountId"] == results[1].record_id
    # C-0 and A-NEW go first, a call each; C-1 waits for a second round after its parent.
    assert fake.calls["sobject_upsert"] == 3
    assert fake.last_body["sobject_upsert"]["Account"] == {"External_Id__c": "A-NEW"}


@pytest.mark.parametrize("locked", [False, True], ids=["refused for good", "locked: retried"])
def test_a_child_whose_parent_was_refused_earlier_in_the_batch_is_not_sent(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce, locked: bool
) -> None:
    if locked:  # an existing parent the org holds: its child would be linked to its old version
        fake.add_record("Account", External_Id__c="A-1", Name="Old")
        fake.lock("Account", "A-1")
    refused = account("A-1") if locked else account("A-1", Name="")  # a new one needs a Name
    batch = [refused, contact("C-1", parent="A-1"), account("A-2"), contact("C-2", parent="A-2")]

    parent, child, other, sibling = connect().upsert(batch)

    assert (parent.ok, parent.transient) == (False, locked)
    assert (child.ok, child.parent_failed, child.transient) == (False, True, locked)
    assert child.error is not None
    assert child.error.startswith("not sent: its parent Account 'A-1' was not applied (")
    assert child.error.endswith("); it is sent again with its parent")
    assert fake.find("Contact", "Ext__c", "C-1") == []  # never sent: no stale link, no refusal
    assert (other.ok, sibling.ok, sibling.parent_failed) == (True, True, False)


def test_a_record_not_sent_for_its_parent_holds_back_its_own_children(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce
) -> None:
    fake.add_record("Account", External_Id__c="A-1", Name="Old")
    fake.lock("Account", "A-1")
    middle = contact("C-1", parent="A-1")
    grandchild = UpsertRequest(
        "Contact",
        "Ext__c",
        "C-2",
        {"LastName": "Doe"},
        parent=ParentLink("Contact", "Ext__c", "C-1"),
    )

    results = connect().upsert([account("A-1"), middle, grandchild])

    assert [(r.ok, r.parent_failed) for r in results] == [
        (False, False),
        (False, True),
        (False, True),
    ]
    assert "its own parent was not applied" in (results[2].error or "")
    assert fake.calls["sobject_upsert"] == 1  # the parent's call only


def test_a_child_of_a_missing_parent_is_refused_with_salesforces_words(
    connect: Callable[..., SalesforceTarget],
) -> None:
    [result] = connect().upsert([contact("C-1", parent="A-NONE")])

    assert result.error == (
        "INVALID_FIELD: Foreign key external ID: A-NONE not found for field External_Id__c "
        "in entity Account"
    )


# -- collections ------------------------------------------------------------------------------


def test_a_batch_goes_as_one_collection_with_results_per_record(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce
) -> None:
    existing = fake.add_record("Account", External_Id__c="A-OLD", Name="Old")
    batch = [
        account("A-1", Industry="Retail"),
        account("A-OLD", Industry="Energy"),
        account("A-2", Bogus__c="x"),
        UpsertRequest("Account", "External_Id__c", "A-3", {"Industry": "Retail"}),
        account("A-1", Name="Acme Two"),  # the same record again: merged, later fields win
    ]

    results = connect().upsert(batch)

    assert [(r.ok, r.created) for r in results] == [
        (True, True),
        (True, False),
        (False, False),
        (False, False),
        (True, True),
    ]
    assert results[1].record_id == existing
    assert results[2].error == "INVALID_FIELD: No such column 'Bogus__c' on sobject of type Account"
    assert results[3].error == (
        "REQUIRED_FIELD_MISSING: Required fields are missing: [Name] (fields: Name)"
    )
    assert results[4] == results[0]
    assert fake.calls == Counter({"soap_login": 1, "collection_upsert": 1})
    sent = fake.last_body["collection_upsert"]
    assert sent["allOrNone"] is False
    assert [r["External_Id__c"] for r in sent["records"]] == ["A-1", "A-OLD", "A-2", "A-3"]
    assert sent["records"][0] == {
        "attributes": {"type": "Account"},
        "External_Id__c": "A-1",
        "Name": "Acme Two",
        "Industry": "Retail",
    }


def test_external_ids_differing_in_case_only_never_share_a_call(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce
) -> None:
    # A unique external id field matches "A-1" to "a-1" unless it is made case-sensitive, and
    # Salesforce refuses a collection naming one record twice.
    batch = [account("A-1", Name="First"), account("a-1", Name="Second"), account("B-1")]

    results = connect().upsert(batch)

    assert [(r.ok, r.created) for r in results] == [(True, True), (True, False), (True, True)]
    assert [r["Name"] for r in fake.find("Account", "External_Id__c", "A-1")] == ["Second"]
    assert fake.calls == Counter({"soap_login": 1, "collection_upsert": 1, "sobject_upsert": 1})


def test_a_collection_for_an_unknown_object_fails_every_record_in_it(
    connect: Callable[..., SalesforceTarget],
) -> None:
    batch = [UpsertRequest("Nope__c", "External_Id__c", f"N-{i}", {}) for i in range(2)]

    results = connect().upsert(batch)

    assert [r.error for r in results] == ["NOT_FOUND: The requested resource does not exist"] * 2


def test_a_burst_of_1000_upserts_of_one_object_takes_six_calls(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce
) -> None:
    target = connect()
    burst = [account(f"A-{i:04d}", Industry="Retail") for i in range(1000)]

    created = target.upsert(burst)

    assert all(r.ok and r.created for r in created)
    assert len(fake.records["Account"]) == 1000
    # One login, then five collections of 200.
    assert target.api_calls == 6
    assert fake.calls == Counter({"soap_login": 1, "collection_upsert": 5})
    assert len(fake.last_body["collection_upsert"]["records"]) == 200

    updated = target.upsert(burst)

    assert all(r.ok and not r.created for r in updated)
    assert target.api_calls == 11  # the session is reused: five more collections


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", LOGIN_MODES)
def test_an_expired_session_gets_one_new_login(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce, mode: str
) -> None:
    target = connect(mode)
    target.upsert([account("A-1")])
    fake.expire_sessions()

    [result] = target.upsert([account("A-2")])

    assert result.ok
    assert fake.calls["soap_login"] + fake.calls["oauth_token"] == 2
    # login, upsert; then the refused upsert, login again, and the upsert resent.
    assert target.api_calls == 5


def test_a_session_refused_right_after_login_is_an_error_not_a_loop(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce
) -> None:
    target = connect()
    fake.fail_next(SESSION_EXPIRED, SESSION_EXPIRED, SESSION_EXPIRED)

    with pytest.raises(TargetError, match="just issued") as raised:
        target.upsert([account("A-1")])

    assert not isinstance(raised.value, TransientTargetError)
    assert fake.calls == Counter({"soap_login": 2, "sobject_upsert": 2})


def test_an_expired_session_id_cannot_be_renewed(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce
) -> None:
    target = connect("session_id")
    fake.expire_sessions()

    with pytest.raises(TargetError, match=r"INVALID_SESSION_ID.*SALESFORCE_SESSION_ID"):
        target.upsert([account("A-1")])
    assert target.api_calls == 1


def test_the_request_limit_pauses_the_target(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce
) -> None:
    now = [1000.0]
    target = connect(clock=lambda: now[0], pause_s=300)
    fake.fail_next(REQUEST_LIMIT_EXCEEDED)

    with pytest.raises(TransientTargetError, match="limit exceeded"):
        target.upsert([account("A-1")])
    calls = target.api_calls
    now[0] += 299
    with pytest.raises(TransientTargetError, match="paused"):
        target.upsert([account("A-1")])
    assert (target.api_calls, fake.api_used) == (calls, 1)

    now[0] += 2
    assert target.upsert([account("A-1")])[0].ok


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(TOO_MANY_REQUESTS, id="429"),
        pytest.param(SERVER_ERROR, id="500"),
        pytest.param(UNAVAILABLE, id="503"),
        pytest.param(slow(5), id="timeout"),  # longer than SALESFORCE_TIMEOUT_S
        pytest.param(DROPPED, id="dropped-connection"),
    ],
)
@pytest.mark.parametrize("batch_size", [1, 2], ids=["single-record", "collection"])
def test_outages_are_transient_and_pass(
    connect: Callable[..., SalesforceTarget], fake: FakeSalesforce, fault: Any, batch_size: int
) -> None:
    target = connect(env={"SALESFORCE_TIMEOUT_S": "0.3"})
    batch = [account(f"A-{i}") for i in range(batch_size)]
    fake.fail_next(fault)

    with pytest.raises(TransientTargetError):
        target.upsert(batch)
    assert all(r.ok for r in target.upsert(batch))


def test_api_usage_is_read_from_the_response_headers(
    connect: Callable[..., SalesforceTarget],
) -> None:
    target = connect("session_id", profile="usage")
    assert target.api_usage is None

    target.upsert([account("A-1")])
    target.upsert([account("A-2"), account("A-3")])

    assert target.api_usage == (2, 15000)
    gauge = "gateway_salesforce_api_usage"
    assert REGISTRY.get_sample_value(gauge, {"target": "usage", "kind": "used"}) == 2
    assert REGISTRY.get_sample_value(gauge, {"target": "usage", "kind": "limit"}) == 15000


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        # A session id and where it is valid.
        ({"SESSION_ID": "00D!x", "INSTANCE_URL": "https://acme.my.salesforce.com"}, "session_id"),
        # A Connected App certificate for a user.
        ({"CONSUMER_KEY": "k", "PRIVATE_KEY_FILE": "/k.pem", "USERNAME": "u"}, "jwt_bearer"),
        # A Connected App's key and secret on My Domain.
        ({"CONSUMER_KEY": "k", "CONSUMER_SECRET": "s", "DOMAIN": "acme.my"}, "client_credentials"),
        # A password with an empty token: the org trusts the gateway's IP range.
        ({"USERNAME": "u", "PASSWORD": "p", "SECURITY_TOKEN": ""}, "password"),
        # JWT and password both complete: the first complete mode wins.
        (
            {
                "CONSUMER_KEY": "k",
                "PRIVATE_KEY_FILE": "/k",
                "USERNAME": "u",
                "PASSWORD": "p",
                "SECURITY_TOKEN": "t",
            },
            "jwt_bearer",
        ),
    ],
)
def test_the_login_mode_follows_from_the_variables_set(env: dict[str, str], mode: str) -> None:
    settings = SalesforceSettings.from_env({f"SALESFORCE_{k}": v for k, v in env.items()})

    assert settings.auth_mode == AuthMode(mode)


def test_a_profile_overrides_the_shared_variables() -> None:
    env = {
        "SALESFORCE_USERNAME": "shared@example.com",
        "SALESFORCE_PASSWORD": "shared-password",
        "SALESFORCE_SECURITY_TOKEN": "shared-token",
        "SALESFORCE_EU_USERNAME": "eu@example.com",
        "SALESFORCE_EU_DOMAIN": "https://acme-eu.my.salesforce.com",
        "SALESFORCE_EU_TIMEOUT_S": "5",
    }

    shared = SalesforceSettings.from_env(env)
    eu = SalesforceSettings.from_env(env, "eu")

    assert (shared.username, shared.domain, shared.timeout_s) == ("shared@example.com", "login", 30)
    assert (eu.username, eu.domain, eu.timeout_s) == ("eu@example.com", "acme-eu.my", 5)
    assert (eu.password, eu.profile, eu.api_version) == ("shared-password", "eu", "62.0")


@pytest.mark.parametrize(
    ("env", "profile", "named", "not_named"),
    [
        # Nothing set: every mode's variables are named.
        (
            {},
            None,
            [
                "SALESFORCE_SESSION_ID",
                "SALESFORCE_INSTANCE_URL",
                "SALESFORCE_PRIVATE_KEY_FILE",
                "SALESFORCE_CONSUMER_SECRET",
                "SALESFORCE_DOMAIN (the org's My Domain",
                "SALESFORCE_SECURITY_TOKEN",
            ],
            [],
        ),
        # A profile's user without a password: the profile's names, and only what is missing.
        (
            {"SALESFORCE_EU_USERNAME": "u", "SALESFORCE_CONSUMER_KEY": "k"},
            "eu",
            ["SALESFORCE_EU_PASSWORD", "SALESFORCE_EU_PRIVATE_KEY_FILE", "falls back"],
            ["SALESFORCE_EU_USERNAME", "SALESFORCE_EU_CONSUMER_KEY"],
        ),
        # Client credentials on the shared login domain cannot work.
        (
            {"SALESFORCE_CONSUMER_KEY": "k", "SALESFORCE_CONSUMER_SECRET": "s"},
            None,
            ["client_credentials needs SALESFORCE_DOMAIN"],
            [],
        ),
    ],
)
def test_incomplete_settings_name_the_missing_variables(
    env: dict[str, str], profile: str | None, named: list[str], not_named: list[str]
) -> None:
    with pytest.raises(TargetError) as raised:
        SalesforceSettings.from_env(env, profile)

    message = raised.value.message
    assert all(name in message for name in named), message
    assert not any(name in message for name in not_named), message


def test_a_bad_timeout_is_refused() -> None:
    env = {
        "SALESFORCE_SESSION_ID": "x",
        "SALESFORCE_INSTANCE_URL": "https://a",
        "SALESFORCE_TIMEOUT_S": "soon",
    }

    with pytest.raises(TargetError, match="SALESFORCE_TIMEOUT_S"):
        SalesforceSettings.from_env(env)


def test_settings_never_show_secrets() -> None:
    settings = SalesforceSettings(
        username="u@example.com",
        password="pw-secret",
        security_token="token-secret",
        consumer_key="key-secret",
        consumer_secret="consumer-secret",
        session_id="session-secret",
        instance_url="https://acme.my.salesforce.com",
    )

    shown = repr(settings)

    assert "u@example.com" in shown and "session_id" in shown  # the mode, not the id
    assert "secret" not in shown
