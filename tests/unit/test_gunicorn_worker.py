"""What the gateway's gunicorn worker does with a request body the application left unread."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from gunicorn.http.body import Body, ChunkedReader, LengthReader
from gunicorn.http.unreader import IterUnreader

from gateway.gunicorn_worker import skip_unread_body

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
