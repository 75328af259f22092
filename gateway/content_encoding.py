"""Compressed request bodies: a ``Content-Encoding`` undone, within the body size limit.

Pure: no Flask, no I/O. Only the codings a connector profile accepts are undone (its
``content_encoding``); any other is refused with 415, so that a sender learns why rather than
seeing its compressed bytes refused as JSON that is not valid UTF-8. The decompressed size is
bounded as a body's size is: a small body that would inflate past the limit is refused with 413
as soon as the limit is passed, never held whole.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection

from gateway.errors import BadRequest, PayloadTooLarge, UnsupportedContentEncoding

#: The codings the gateway can undo (those zlib reads), as named in Content-Encoding.
SUPPORTED = ("gzip", "deflate")
#: zlib's window sizes: a gzip member, a zlib stream (what "deflate" names), a bare deflate one.
_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


def codings(header: str) -> list[str]:
    """The codings a Content-Encoding header names, lower-cased, ``identity`` left out."""
    named = (coding.strip().lower() for coding in header.split(","))
    return [coding for coding in named if coding and coding != "identity"]


def decode(header: str, accepted: Collection[str], body: bytes, limit: int) -> bytes:
    """``body`` with the coding ``header`` names undone; refused unless ``accepted`` has it.

    One coding at most: a body compressed again and again would take one pass per coding.
    """
    named = codings(header)
    if not named:
        return body
    if len(named) > 1:
        raise UnsupportedContentEncoding(
            f"the body is encoded {len(named)} times ({header.strip()[:100]}); send it"
            " compressed once at most"
        )
    (coding,) = named
    if coding not in SUPPORTED:
        raise UnsupportedContentEncoding(
            f"bodies encoded as {coding[:100]!r} are not accepted; send it uncompressed"
        )
    if coding not in accepted:
        allowed = f" (it accepts {', '.join(sorted(accepted))})" if accepted else ""
        raise UnsupportedContentEncoding(
            f"this connector does not accept {coding} bodies{allowed}; send it uncompressed"
        )
    return inflate(body, coding, limit)


def inflate(body: bytes, coding: str, limit: int) -> bytes:
    """Decompress a gzip or deflate body, 413 once it passes ``limit`` bytes, 400 if corrupt.

    gzip may be several members one after the other (as ``cat a.gz b.gz``); "deflate" is a zlib
    stream, though some senders send the bare deflate data inside it, which is read too.
    """
    wbits = _GZIP if coding == "gzip" else _deflate_wbits(body)
    parts: list[bytes] = []
    size = 0
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            part = inflater.decompress(rest, limit - size + 1)
        except zlib.error as exc:
            raise _malformed(coding, str(exc)) from exc
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(
                f"the body decompressed is larger than the limit of {limit} bytes"
            )
        if not inflater.eof:
            raise _malformed(coding, "it ends before its compressed data does")
        parts.append(part)
        rest = inflater.unused_data
        if not rest:
            return b"".join(parts)
        if wbits != _GZIP:
            raise _malformed(coding, "bytes follow its compressed data")


def _deflate_wbits(body: bytes) -> int:
    """A zlib stream when the body starts with a zlib header (RFC 1950), else bare deflate."""
    zlib_header = len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
    return _ZLIB if zlib_header else _RAW_DEFLATE


def _malformed(coding: str, reason: str) -> BadRequest:
    return BadRequest(f"the {coding} body cannot be decompressed: {reason}", code="body_malformed")
