"""Paging every list alike: a bounded ``limit``, and an opaque cursor bound to its list.

A list is read in one stable order, and each item's sort key (a JSON value: a string, a
number, or a list of them) is its place in that order, so that the list's reader, given the
key of the last item shown, reads on from there (keyset paging: no item is skipped or shown
twice when others come or go). A page is read one item past its ``limit``, so that a next page
is announced exactly when there is one. Its cursor carries the key of the page's last item,
signed with the gateway's secret key and salted with the list it belongs to: a made-up, edited
or another list's cursor fails the signature and is refused, rather than read as the end of
the list or as some other page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from itsdangerous import BadData, URLSafeSerializer

from gateway.errors import BadRequest, Detail
from gateway.validation import whole_number

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: Changing what a list's keys hold changes this, so that older cursors are refused, not misread.
CURSOR_SALT = "gateway list cursor v1"

T = TypeVar("T")
#: A sort key as JSON gives it back: a string, a number, or a list of those.
Key = Any


def parse_limit(raw: str | None) -> int:
    """The page size asked for, ``DEFAULT_LIMIT`` unless given."""
    limit = DEFAULT_LIMIT if raw is None else whole_number(raw, MAX_LIMIT)
    if limit is None or limit < 1:
        expected = f"a whole number from 1 to {MAX_LIMIT}"
        raise BadRequest(
            f"limit must be {expected}", code="invalid_limit", details=[Detail("limit", expected)]
        )
    return limit


class Paging:
    """The pages of one list, ``scope``: it reads back only the cursors it gave out."""

    def __init__(self, secret_key: str, scope: str) -> None:
        self._serializer = URLSafeSerializer(
            secret_key,
            salt=f"{CURSOR_SALT} {scope}",
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
        )

    def page(
        self,
        read: Callable[[int, Key | None], Sequence[T]],
        key: Callable[[T], Key],
        limit: int,
        cursor: str | None,
    ) -> tuple[list[T], str | None]:
        """A page and the next page's cursor; ``read(n, after)``: up to n items past ``after``."""
        rows = read(limit + 1, self._after(cursor))
        if len(rows) <= limit:
            return list(rows), None
        return list(rows[:limit]), self._serializer.dumps(key(rows[limit - 1]))

    def _after(self, cursor: str | None) -> Key | None:
        """The key of the last item the previous page showed; None for the first page."""
        if not cursor:
            return None
        try:
            return self._serializer.loads(cursor)
        except BadData as exc:
            raise BadRequest(
                "cursor is not one this list gave out",
                code="invalid_cursor",
                details=[Detail("cursor", "pass a next_cursor of this same list, unchanged")],
            ) from exc


def in_memory(items: Iterable[T], key: Callable[[T], Key]) -> Callable[[int, Key | None], list[T]]:
    """A ``read`` for a list held in memory: its items in ``key`` order, past ``after``."""
    ordered = sorted(items, key=key)

    def read(count: int, after: Key | None) -> list[T]:
        return [item for item in ordered if after is None or key(item) > after][:count]

    return read
