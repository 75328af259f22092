"""Requests a real gunicorn cannot read whole: each a 4xx with the contract's error body.

Sent over raw sockets, as no HTTP client sends them, to one gunicorn started as the shipped
configuration starts it. Both gunicorn's own refusals (a request line or headers it will not
parse) and the gateway's (a body it cannot read, at a callback URL or in the admin API) are
covered.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pytest

from tests.acceptance import senders
from tests.acceptance.conftest import Api, launch_web, sqlite_settings, stop
from tests.conftest import ADMIN_TOKEN


@dataclass(frozen=True)
class Served:
    port: int
    #: The callback path of a Xemelgo group.
    hook: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One gunicorn for every case: what is sent here never reaches the database."""
    settings = sqlite_settings(tmp_path_factory.mktemp("malformed"))
    started: list[subprocess.Popen[bytes]] = []
    try:
        url, _ = launch_web(settings, started)
        group = senders.create_group(Api(url, ADMIN_TOKEN))
        yield Served(int(url.rsplit(":", 1)[1]), "/hooks/" + group["callback_url"].split("/")[-1])
    finally:
        for process in started:
            stop(process)


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    #: Whether the server closed the connection after the answer, with nothing more on it.
    closed: bool


def _exchange(port: int, request: bytes, *, end_of_input: bool = False) -> Answer:
    """Send raw bytes, optionally closing our side (a sender cut off), and read one answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        if end_of_input:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        return Answer(response.status, response.getheader("Content-Type", ""), body, _closed(sock))


def _closed(sock: socket.socket) -> bool:
    """Closed, and nothing more on it; a reset is a close with our request not all read."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _post(hook: str, headers: str, body: bytes) -> bytes:
    return (
        f"POST {hook} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{headers}\r\n"
    ).encode() + body


def _assert_error_body(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.content_type == "application/json"
    error = json.loads(answer.body)["error"]
    assert error["code"] == code
    assert error["message"]


CHUNKED = "Transfer-Encoding: chunked\r\n"


@pytest.mark.parametrize(
    ("headers", "body", "end_of_input", "code"),
    [
        (CHUNKED, b'10\r\n{"id": "d-', True, "body_incomplete"),
        (CHUNKED, b"zz\r\n{}\r\n0\r\n\r\n", False, "body_malformed"),
        (CHUNKED, b"2\r\n{}XX0\r\n\r\n", False, "body_malformed"),
        ("Content-Length: 100\r\n", b'{"id": "d-', True, "body_incomplete"),
    ],
    ids=["chunk cut short", "bad chunk size", "bad chunk terminator", "shorter than its length"],
)
def test_a_delivery_whose_body_cannot_be_read_whole_is_400(
    served: Served, headers: str, body: bytes, end_of_input: bool, code: str
) -> None:
    answer = _exchange(served.port, _post(served.hook, headers, body), end_of_input=end_of_input)

    _assert_error_body(answer, 400, code)
    assert answer.closed


@pytest.mark.parametrize(
    ("body", "end_of_input", "code"),
    [
        (b'10\r\n{"name": "g-', True, "body_incomplete"),
        (b"zz\r\n{}\r\n0\r\n\r\n", False, "body_malformed"),
        (b"2\r\n{}XX0\r\n\r\n", False, "body_malformed"),
    ],
    ids=["chunk cut short", "bad chunk size", "bad chunk terminator"],
)
def test_an_admin_request_whose_body_cannot_be_read_whole_is_400(
    served: Served, body: bytes, end_of_input: bool, code: str
) -> None:
    headers = f"{CHUNKED}Authorization: Bearer {ADMIN_TOKEN}\r\n"

    answer = _exchange(
        served.port, _post("/api/v1/groups", headers, body), end_of_input=end_of_input
    )

    _assert_error_body(answer, 400, code)


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (
            b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n",
            431,
            "request_header_fields_too_large",
        ),
        (
            b"GET /healthz HTTP/1.1\r\n"
            + b"".join(b"X-H%d: 1\r\n" % i for i in range(201))
            + b"\r\n",
            431,
            "request_header_fields_too_large",
        ),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
        (b"GET /healthz HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "bad_request"),
    ],
    ids=["header too large", "too many headers", "request line too long", "space in a name"],
)
def test_requests_gunicorn_refuses_get_the_contracts_error_body(
    served: Served, request_bytes: bytes, status: int, code: str
) -> None:
    answer = _exchange(served.port, request_bytes)

    _assert_error_body(answer, status, code)
    assert answer.closed


UNKNOWN_HOOK = "/hooks/no-such-callback-token"
SECOND_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.mark.parametrize(
    ("path", "status"),
    [(UNKNOWN_HOOK, 404), ("/api/v1/groups", 401)],
    ids=["unknown token", "admin API without a token"],
)
def test_a_malformed_body_left_unread_ends_the_connection_without_a_second_answer(
    served: Served, path: str, status: int
) -> None:
    request = _post(path, CHUNKED, b"zz\r\n{}\r\n0\r\n\r\n") + SECOND_REQUEST

    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(request)
        with sock.makefile("rb") as stream:
            answers = _read_statuses(stream, 1)
            rest = stream.read()

    assert answers == [status]
    assert rest == b""


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (UNKNOWN_HOOK, b'{"id": "d-1"}', 404),
        (None, b"{" + b" " * (1024 * 1024 + 1) + b"}", 413),
    ],
    ids=["unknown token", "body over the limit"],
)
def test_an_answer_given_before_the_body_was_read_keeps_the_connection(
    served: Served, path: str | None, body: bytes, status: int
) -> None:
    request = _post(path or served.hook, f"Content-Length: {len(body)}\r\n", body)

    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(request + SECOND_REQUEST)
        with sock.makefile("rb") as stream:
            answers = _read_statuses(stream, 2)

    assert answers == [status, 200]


def _read_statuses(stream: BinaryIO, count: int) -> list[int]:
    """The statuses of the next ``count`` answers on a connection, each read whole."""
    statuses = []
    for _ in range(count):
        statuses.append(int(stream.readline().split()[1]))
        length = 0
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        stream.read(length)
    return statuses
