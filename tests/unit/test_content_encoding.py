"""Compressed bodies: undone only when accepted, within the size limit, never held whole."""

from __future__ import annotations

import gzip
import zlib

import pytest

from gateway.content_encoding import decode
from gateway.errors import GatewayError

BODY = b'{"event_type": "order.created", "data": {"n": 1}}'
LIMIT = 1024
BOTH = ("gzip", "deflate")
UNSUPPORTED = "unsupported_content_encoding"


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("header", "sent"),
    [
        ("gzip", gzip.compress(BODY)),
        ("GZIP ", gzip.compress(BODY)),  # codings are case-insensitive
        ("deflate", zlib.compress(BODY)),  # a zlib stream, as RFC 9110 says
        ("deflate", raw_deflate(BODY)),  # the bare deflate data some senders send
        ("gzip", gzip.compress(BODY[:10]) + gzip.compress(BODY[10:])),  # two gzip members
        ("identity", BODY),
        ("", BODY),
    ],
)
def test_an_accepted_coding_is_undone(header: str, sent: bytes) -> None:
    assert decode(header, BOTH, sent, LIMIT) == BODY


@pytest.mark.parametrize(
    ("header", "accepted", "sent", "status", "code"),
    [
        ("br", BOTH, BODY, 415, UNSUPPORTED),  # unknown to the gateway
        ("gzip", (), gzip.compress(BODY), 415, UNSUPPORTED),  # not accepted
        ("deflate", ("gzip",), zlib.compress(BODY), 415, UNSUPPORTED),
        (
            "gzip, gzip",
            BOTH,
            gzip.compress(gzip.compress(BODY)),
            415,
            "unsupported_content_encoding",
        ),
        ("gzip", BOTH, gzip.compress(b" " * (LIMIT + 1)), 413, "payload_too_large"),
        ("gzip", BOTH, gzip.compress(BODY)[:-8], 400, "body_malformed"),  # cut short
        ("gzip", BOTH, b"not gzip at all", 400, "body_malformed"),
        ("gzip", BOTH, b"", 400, "body_malformed"),
        ("deflate", BOTH, zlib.compress(BODY) + b"tail", 400, "body_malformed"),
    ],
)
def test_a_coding_that_cannot_be_undone_is_refused(
    header: str, accepted: tuple[str, ...], sent: bytes, status: int, code: str
) -> None:
    with pytest.raises(GatewayError) as raised:
        decode(header, accepted, sent, LIMIT)

    assert (raised.value.status, raised.value.code) == (status, code)


def test_a_zip_bomb_is_refused_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB in 64 KiB

    with pytest.raises(GatewayError) as raised:
        decode("gzip", BOTH, bomb, LIMIT)

    assert raised.value.status == 413
