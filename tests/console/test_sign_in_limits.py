"""Console sign-in: each client address gets a few attempts per window, counted in the database.

Only the console's sign-in form is limited; the admin API and the callbacks answer 401 as the
contract says, however often they are asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway.config import Settings
from gateway.errors import TooManySignIns
from gateway.services import Gateway
from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import form_token

ATTEMPTS = 3
WINDOW_S = 60.0
HOME = "10.0.0.1"
ELSEWHERE = "10.0.0.2"


class Clock:
    """The throttle's clock, moved on by hand rather than by sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides({"sign_in_attempts": ATTEMPTS, "sign_in_window_s": WINDOW_S})


@pytest.fixture
def clock(gw: Gateway) -> Clock:
    gw.sign_ins.clock = clock = Clock()
    return clock


def sign_in(
    client: FlaskClient, token: str, address: str = HOME, headers: dict[str, str] | None = None
) -> Any:
    """Post the sign-in form as a browser at ``address`` would."""
    peer = {"REMOTE_ADDR": address}
    form = form_token(client.get("/admin/sign-in", environ_base=peer).text)
    return client.post(
        "/admin/sign-in",
        data={"csrf_token": form, "token": token},
        environ_base=peer,
        headers=headers or {},
    )


def fail(client: FlaskClient, times: int, address: str = HOME) -> None:
    for _ in range(times):
        assert sign_in(client, "wrong-" + ADMIN_TOKEN, address).status_code == 401


def test_once_the_attempts_are_used_up_even_the_right_token_is_refused(
    client: FlaskClient, clock: Clock
) -> None:
    fail(client, ATTEMPTS)
    clock.advance(20)

    refused = sign_in(client, ADMIN_TOKEN)

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "40"  # the window opened at the first failure
    assert "Too many failed sign-ins from your address (3 within 60 seconds)" in refused.text
    assert "try again in 40 seconds" in refused.text
    assert client.get("/admin/").status_code == 303  # not signed in


def test_the_attempts_come_back_when_the_window_has_passed(
    client: FlaskClient, clock: Clock
) -> None:
    fail(client, ATTEMPTS)
    clock.advance(WINDOW_S - 1)
    assert sign_in(client, ADMIN_TOKEN).headers["Retry-After"] == "1"

    clock.advance(1)

    fail(client, ATTEMPTS)  # a new window, with all its attempts
    assert sign_in(client, ADMIN_TOKEN).status_code == 429


def test_signing_in_clears_the_failures(client: FlaskClient, clock: Clock) -> None:
    fail(client, ATTEMPTS - 1)
    assert sign_in(client, ADMIN_TOKEN).status_code == 303

    fail(client, ATTEMPTS)
    assert sign_in(client, ADMIN_TOKEN).status_code == 429


def test_each_address_has_its_own_attempts(client: FlaskClient, clock: Clock) -> None:
    fail(client, ATTEMPTS)

    fail(client, ATTEMPTS, ELSEWHERE)
    assert sign_in(client, ADMIN_TOKEN, "10.0.0.3").status_code == 303
    assert sign_in(client, ADMIN_TOKEN).status_code == 429


def test_every_web_process_counts_the_same_attempts(
    client: FlaskClient, clock: Clock, settings: Settings
) -> None:
    """Another process, or host, over the same database refuses what this one counted."""
    from gateway.web import create_app

    fail(client, ATTEMPTS)
    other = Gateway(settings)
    other.sign_ins.clock = clock  # the same moment: the real one may be past this clock's window
    try:
        refused = sign_in(create_app(gateway=other).test_client(), ADMIN_TOKEN)
    finally:
        other.close()

    assert refused.status_code == 429


def test_attempts_at_once_get_no_more_than_the_allowance(gw: Gateway) -> None:
    """Counted in one statement before the token is checked, so no race lets extra ones in."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(_attempt, [gw] * 4 * ATTEMPTS))

    assert sorted(o for o in outcomes if o) == list(range(1, ATTEMPTS + 1))
    assert outcomes.count(0) == 3 * ATTEMPTS


def _attempt(gw: Gateway) -> int:
    """The attempt's number, or 0 when it was refused."""
    try:
        return gw.sign_ins.attempt(HOME)
    except TooManySignIns:
        return 0


def test_an_x_forwarded_for_header_gets_no_fresh_attempts(
    client: FlaskClient, clock: Clock
) -> None:
    """The app takes no proxy's word for the client's address, so neither does the limit."""
    for n in range(ATTEMPTS):
        forged = {"X-Forwarded-For": f"192.0.2.{n}"}
        assert sign_in(client, "guess", headers=forged).status_code == 401

    refused = sign_in(client, ADMIN_TOKEN, headers={"X-Forwarded-For": "192.0.2.99"})

    assert refused.status_code == 429


#: A client's address as the trusted reverse proxy at HOME passes it on.
CLIENT = "198.51.100.1"
OTHER_CLIENT = "198.51.100.2"


@pytest.fixture
def proxied(settings: Settings, clock: Clock) -> Iterator[FlaskClient]:
    """The console behind one reverse proxy, at HOME, that the gateway is told to trust."""
    from gateway.web import create_app

    behind = Gateway(settings.with_overrides({"trusted_proxies": 1}))
    behind.sign_ins.clock = clock
    app = create_app(gateway=behind)
    app.config["TESTING"] = True
    yield app.test_client()
    behind.close()


def via_proxy(client: FlaskClient, token: str, forwarded: str) -> Any:
    """Sign in through the proxy, which appends the address it saw to X-Forwarded-For."""
    return sign_in(client, token, HOME, headers={"X-Forwarded-For": forwarded})


def test_behind_a_trusted_proxy_each_client_has_its_own_attempts(
    proxied: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(ATTEMPTS):
        assert via_proxy(proxied, "guess", CLIENT).status_code == 401

    assert via_proxy(proxied, ADMIN_TOKEN, CLIENT).status_code == 429
    assert via_proxy(proxied, ADMIN_TOKEN, OTHER_CLIENT).status_code == 303
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.console.auth"]
    assert lines[0] == f"console sign-in from {CLIENT} failed: wrong token (attempt 1 of 3)"


def test_behind_a_trusted_proxy_an_entry_the_client_wrote_gets_no_fresh_attempts(
    proxied: FlaskClient,
) -> None:
    """Only the entry the trusted proxy appended counts; whatever the client sent comes first."""
    for n in range(ATTEMPTS):
        assert via_proxy(proxied, "guess", f"192.0.2.{n}, {CLIENT}").status_code == 401

    refused = via_proxy(proxied, ADMIN_TOKEN, f"192.0.2.99, {CLIENT}")

    assert refused.status_code == 429


def test_the_admin_api_and_callbacks_are_not_limited(
    client: FlaskClient, clock: Clock, admin: Any, group_factory: Any
) -> None:
    """Their answers are the contract's: 401 for a wrong token or signature, every time."""
    group = group_factory()
    peer = {"REMOTE_ADDR": HOME}
    fail(client, ATTEMPTS)
    for _ in range(ATTEMPTS + 2):
        api = client.get("/api/v1/groups", headers={"Authorization": "Bearer x"}, environ_base=peer)
        hook = client.post(f"/hooks/{group['token']}", json={}, environ_base=peer)
        assert (api.status_code, hook.status_code) == (401, 401)

    assert admin.get("/groups", environ_base=peer).status_code == 200


def test_failed_and_refused_attempts_are_logged_with_the_address_but_not_the_token(
    client: FlaskClient, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fail(client, ATTEMPTS)
    sign_in(client, ADMIN_TOKEN)

    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.console.auth"]
    assert lines == [
        "console sign-in from 10.0.0.1 failed: wrong token (attempt 1 of 3)",
        "console sign-in from 10.0.0.1 failed: wrong token (attempt 2 of 3)",
        "console sign-in from 10.0.0.1 failed: wrong token (attempt 3 of 3)",
        "console sign-in from 10.0.0.1 refused: too many failed attempts",
    ]
    assert ADMIN_TOKEN not in caplog.text


def test_expired_counts_are_purged_as_new_attempts_come(
    client: FlaskClient, clock: Clock, gw: Gateway
) -> None:
    from sqlalchemy import select

    from gateway.models import SignInAttempts

    for n in range(5):
        fail(client, 1, f"10.0.1.{n}")
    clock.advance(WINDOW_S)

    fail(client, 1, ELSEWHERE)

    with gw.db.read_session() as session:
        assert list(session.scalars(select(SignInAttempts.address))) == [ELSEWHERE]


def test_the_sign_in_page_states_the_limit(client: FlaskClient) -> None:
    page = client.get("/admin/sign-in").text

    assert "After 3 failed sign-ins from one address within 60 seconds" in page
