"""What the gateway's gunicorn worker does with request bodies: paced, and read past when left."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from gunicorn.http.body import Body, ChunkedReader, LengthReader
from gunicorn.http.unreader import IterUnreader

from gateway.errors import BodyTimeout
from gateway.gunicorn_worker import BODY_GRACE_S, BodyPace, PacedSocket, skip_unread_body

LIMIT = 100


def _sized(body: bytes, already_read: int) -> Body:
    reader = Body(LengthReader(IterUnreader([body]), len(body)))
    reader.read(already_read)
    return reader


def _chunked(raw: bytes) -> Body:
    return Body(ChunkedReader(SimpleNamespace(), IterUnreader([raw])))


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        (_sized(b"x" * 50, already_read=50), True),
        (_sized(b"x" * 50, already_read=0), True),
        (_sized(b"x" * (LIMIT + 1), already_read=0), False),
        (_sized(b"x" * (LIMIT + 50), already_read=50), True),
        (_chunked(b"2\r\n{}\r\n0\r\n\r\n"), True),
        (_chunked(b"zz\r\n{}\r\n0\r\n\r\n"), False),
        (_chunked(b"2\r\n{}XX0\r\n\r\n"), False),
    ],
    ids=[
        "read whole",
        "small rest",
        "rest over the limit",
        "rest within the limit",
        "chunked rest",
        "bad chunk size",
        "bad chunk terminator",
    ],
)
def test_an_unread_rest_keeps_the_connection_only_when_small_and_well_formed(
    body: Body, kept: bool
) -> None:
    assert skip_unread_body(body, LIMIT) is kept


# --- pacing -----------------------------------------------------------------------------------


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("timeout_s", "min_rate", "received", "elapsed", "wait"),
    [
        (10.0, 0, 0, 0.0, 10.0),  # no minimum rate: the timeout alone
        (10.0, 0, 0, 9.5, 0.5),
        (10.0, 0, 5_000_000, 10.0, 0.0),  # however much came, the timeout ends it
        (10.0, 100, 0, 0.0, BODY_GRACE_S),  # nothing yet: the grace
        (10.0, 100, 300, 1.0, BODY_GRACE_S + 3.0 - 1.0),  # 300 bytes buy 3 s at 100 B/s
        (10.0, 100, 300, 6.0, -1.0),  # too slow: late
        (10.0, 100, 100_000, 4.0, 6.0),  # fast enough: the timeout is nearer
    ],
)
def test_how_long_a_body_may_wait_for_its_next_bytes(
    timeout_s: float, min_rate: int, received: int, elapsed: float, wait: float
) -> None:
    clock = Clock()
    pace = BodyPace(timeout_s, min_rate, clock)
    pace.received = received
    clock.now += elapsed

    assert pace.wait_s() == pytest.approx(wait)


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        yield ours, theirs


def test_a_paced_read_counts_what_came_and_leaves_the_pool_only_to_wait(
    connection: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = connection
    left: list[str] = []
    clock = Clock()
    pace = BodyPace(10.0, 0, clock)
    paced = PacedSocket(ours, pace, lambda: left.append("pool") or "pool")

    theirs.sendall(b"abc")
    assert paced.recv(10) == b"abc"
    assert (pace.received, left) == (3, [])

    clock.now += 10.0  # the body's time is up while nothing is there to read
    with pytest.raises(BodyTimeout):
        paced.recv(10)
    assert (pace.cut, left, paced.left) == (True, ["pool"], "pool")


def test_a_body_too_slow_to_skip_ends_the_connection() -> None:
    class TooSlow:
        def read(self, size: int) -> bytes:
            raise BodyTimeout()

    assert skip_unread_body(TooSlow(), LIMIT) is False  # type: ignore[arg-type]
