"""The API reference page at /api/v1/docs: open to read, served whole from the package."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import ADMIN_TOKEN

PAGE = "/api/v1/docs"
#: The attributes through which a page makes the browser load something.
LOADING = {("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src")}


class Loads(HTMLParser):
    """Every URL the page has the browser load."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if (tag, name) in LOADING and value]


@pytest.fixture
def get(client: Any) -> Any:
    return client.get


def loaded_by(html: str) -> list[str]:
    parser = Loads()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {ADMIN_TOKEN}"}],
    ids=["no token", "a wrong token", "the admin token"],
)
@pytest.mark.parametrize("path", [PAGE, "/api/v1/openapi.json"])
def test_the_reference_and_its_document_are_open_to_read(
    get: Any, path: str, headers: dict[str, str]
) -> None:
    response = get(path, headers=headers)

    assert response.status_code == 200
    assert ADMIN_TOKEN not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path", ["/api/v1/docsx", "/api/v1/openapi.json.bak", "/api/v1/groups", "/api/v1/doc"]
)
def test_every_other_admin_path_still_needs_the_token(client: Any, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_everything_the_page_loads_comes_from_the_gateway_itself(get: Any) -> None:
    page = get(PAGE)

    urls = loaded_by(page.get_data(as_text=True))

    assert {"script", "stylesheet"} <= {_kind(url) for url in urls}
    for url in urls:
        if url.startswith("data:"):
            continue  # inline: the icon, so that the browser asks for no /favicon.ico
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), url  # no other site, no CDN
        asset = get(url)
        assert asset.status_code == 200, url
        assert asset.mimetype in ("text/javascript", "text/css"), url


def test_the_browser_is_told_to_load_nothing_from_another_origin(get: Any) -> None:
    policy = get(PAGE).headers["Content-Security-Policy"]

    directives = dict(d.strip().partition(" ")[::2] for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert "http" not in policy  # no other origin allowed for any kind of resource
    assert set(directives) >= {"default-src", "object-src", "base-uri", "frame-ancestors"}


def test_the_page_reads_the_gateways_own_document(get: Any) -> None:
    script = get(f"{PAGE}/reference.js").get_data(as_text=True)

    assert 'url: "/api/v1/openapi.json"' in script
    assert "validatorUrl: null" in script  # Swagger UI's default asks an outside validator


@pytest.mark.parametrize("asset", ["nothing.js", "LICENSE", "..%2Fadmin.py", "reference.html"])
def test_a_file_the_page_does_not_use_is_404(client: Any, asset: str) -> None:
    response = client.get(f"{PAGE}/{asset}")

    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def _kind(url: str) -> str:
    return "script" if url.endswith(".js") else "stylesheet" if url.endswith(".css") else url
