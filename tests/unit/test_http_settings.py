"""The HTTP target's settings: what each variable may hold, refused with the variable named."""

from __future__ import annotations

import pytest

from gateway.errors import TargetError
from gateway.targets.http import AuthMode, HttpSettings

BASE = {"HTTP_URL": "https://crm.example.com/"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "HTTP_URL is not set"),
        ({"HTTP_URL": "http://crm.example.com"}, "HTTP_URL must be an https:// URL"),
        ({"HTTP_URL": "ftp://127.0.0.1"}, "HTTP_URL must be an https:// URL"),
        ({**BASE, "HTTP_METHOD": "DELETE"}, "HTTP_METHOD must be one of POST, PUT, PATCH"),
        ({**BASE, "HTTP_AUTH": "digest"}, "HTTP_AUTH must be one of none, bearer"),
        ({**BASE, "HTTP_AUTH": "bearer"}, "HTTP auth bearer needs HTTP_TOKEN"),
        ({**BASE, "HTTP_AUTH": "basic", "HTTP_USERNAME": "u"}, "needs HTTP_PASSWORD"),
        ({**BASE, "HTTP_AUTH": "oauth2"}, "HTTP_TOKEN_URL, HTTP_CLIENT_ID, HTTP_CLIENT_SECRET"),
        ({**BASE, "HTTP_AUTH": "standard_webhooks"}, "needs HTTP_SIGNING_SECRET"),
        ({**BASE, "HTTP_PATH": "customers/{external_id}"}, "HTTP_PATH must start with '/'"),
        ({**BASE, "HTTP_PATH": "/c/{id}"}, "HTTP_PATH names id; it may name {event_id}"),
        ({**BASE, "HTTP_PATH": "/c/{"}, "HTTP_PATH is not a valid template"),
        ({**BASE, "HTTP_HEADERS": '["X-A"]'}, "HTTP_HEADERS must be a JSON object of strings"),
        ({**BASE, "HTTP_HEADERS": '{"X-A": 1}'}, "HTTP_HEADERS must be a JSON object of strings"),
        ({**BASE, "HTTP_TIMEOUT_S": "0"}, "HTTP_TIMEOUT_S must be a positive number"),
        ({**BASE, "HTTP_CONCURRENCY": "1.5"}, "HTTP_CONCURRENCY must be a positive whole number"),
    ],
)
def test_settings_it_cannot_use_are_refused_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(TargetError) as raised:
        HttpSettings.from_env(env)

    assert message in raised.value.message


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]"])
def test_plain_http_is_allowed_to_loopback_only(url: str) -> None:
    assert HttpSettings.from_env({"HTTP_URL": url}).url == url


def test_a_profile_reads_its_own_variables_then_the_shared_ones() -> None:
    env = {
        "HTTP_URL": "https://shared.example.com",
        "HTTP_CRM_URL": "https://crm.example.com",
        "HTTP_AUTH": "bearer",
        "HTTP_CRM_TOKEN": "fake-token",
        "HTTP_CRM_HEADERS": '{"X-Tenant": "acme"}',
    }

    settings = HttpSettings.from_env(env, "crm")

    assert settings.url == "https://crm.example.com"
    assert settings.auth is AuthMode.BEARER
    assert settings.headers == {"X-Tenant": "acme"}
    assert "fake-token" not in repr(settings)
