"""Settings: every value is checked where it is read, and a bad one names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import Settings, admin_token_warning
from gateway.errors import ConfigurationError, GatewayError


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"GATEWAY_INSTANCE_PATH": str(tmp_path), **env})


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        # not numbers at all
        ("GATEWAY_MAX_BODY_BYTES", "abc", "must be a whole number, not 'abc'"),
        ("GATEWAY_RETENTION_DAYS", "x", "must be a whole number, not 'x'"),
        ("GATEWAY_MAX_ATTEMPTS", "2.5", "must be a whole number, not '2.5'"),
        ("GATEWAY_COMMIT_TIMEOUT_S", "soon", "must be a number, not 'soon'"),
        ("GATEWAY_CLAIM_TIMEOUT_S", "nan", "must be a number, not 'nan'"),
        ("GATEWAY_RETRY_MAX_S", "inf", "must be a number, not 'inf'"),
        # sizes and counts of nothing
        ("GATEWAY_MAX_BODY_BYTES", "0", "must be at least 1, not '0'"),
        ("GATEWAY_MAX_HEADER_BYTES", "-1", "must be at least 1, not '-1'"),
        ("GATEWAY_INBOX_MAX_BATCH", "0", "must be at least 1, not '0'"),
        ("GATEWAY_WORKER_BATCH_SIZE", "0", "must be at least 1, not '0'"),
        ("GATEWAY_MAX_ATTEMPTS", "0", "must be at least 1, not '0'"),
        ("GATEWAY_SIGN_IN_ATTEMPTS", "0", "must be at least 1, not '0'"),
        ("GATEWAY_SIGN_IN_ATTEMPTS", "five", "must be a whole number, not 'five'"),
        # a past retention age
        ("GATEWAY_RETENTION_DAYS", "-1", "must be at least 0, not '-1'"),
        ("GATEWAY_TRUSTED_PROXIES", "-1", "must be at least 0, not '-1'"),
        ("GATEWAY_TRUSTED_PROXIES", "10.0.0.1", "must be a whole number, not '10.0.0.1'"),
        # an address to listen on that is not one
        *(
            (
                "GATEWAY_WORKER_METRICS_BIND",
                bind,
                f"must be host:port (as 127.0.0.1:9101), not {bind!r}",
            )
            for bind in ("9101", ":9101", "localhost:", "localhost:http", "localhost:65536")
        ),
        # timeouts and polls that would never wait, or spin
        ("GATEWAY_COMMIT_TIMEOUT_S", "0", "must be more than 0, not '0'"),
        ("GATEWAY_WORKER_POLL_S", "0", "must be more than 0, not '0'"),
        ("GATEWAY_CLAIM_TIMEOUT_S", "-5", "must be more than 0, not '-5'"),
        ("GATEWAY_SIGN_IN_WINDOW_S", "0", "must be more than 0, not '0'"),
        # a sign-in refusal that would lock admins out for days
        ("GATEWAY_SIGN_IN_WINDOW_S", "86401", "must be at most 86400, not '86401'"),
        # waits that may be none, but not negative
        ("GATEWAY_RETRY_BASE_S", "-1", "must be at least 0, not '-1'"),
        ("GATEWAY_RETRY_MAX_S", "-0.5", "must be at least 0, not '-0.5'"),
        ("GATEWAY_BATCH_WINDOW_S", "-0.1", "must be at least 0, not '-0.1'"),
        # choices
        ("GATEWAY_LOG_FORMAT", "xml", "must be text or json, not 'xml'"),
        (
            "GATEWAY_TARGET",
            "nowhere",
            "must be local, salesforce, salesforce:<profile>, "
            "http or http:<profile>, not 'nowhere'",
        ),
        (
            "GATEWAY_TARGET",
            "salesforce:eu-west",
            "must be local, salesforce, salesforce:<profile>, "
            "http or http:<profile>, not 'salesforce:eu-west'",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        _settings(tmp_path, **{variable: value})

    assert raised.value.message == f"{variable} {message}"
    assert isinstance(raised.value, GatewayError)


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p%40ss@127.0.0.1:5433/db?sslmode=disable",
        "postgresql://u:p%40ss@127.0.0.1:5433/db?sslmode=disable",
    ],
    ids=["postgres", "postgresql"],
)
def test_postgresql_urls_without_a_driver_use_the_shipped_one(tmp_path: Path, url: str) -> None:
    settings = _settings(tmp_path, GATEWAY_DATABASE_URL=url)

    assert settings.database_url == (
        "postgresql+psycopg://u:p%40ss@127.0.0.1:5433/db?sslmode=disable"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        # not a URL: its text is not repeated, it may hold a password
        ("notaurl", "cannot be read as a database URL"),
        ("postgresql+psycopg2://u:pw@127.0.0.1/db", "names postgresql+psycopg2://; use"),
        ("mysql://u:pw@127.0.0.1/db", "names mysql://; only sqlite:///PATH and"),
        *(
            (f"{scheme}://u:pw@127.0.0.1/db?sslmode=require&bogus=pw", "has an invalid connection")
            for scheme in ("postgresql+psycopg", "postgres")
        ),
    ],
)
def test_a_database_url_the_gateway_cannot_use_is_refused(
    tmp_path: Path, url: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        _settings(tmp_path, GATEWAY_DATABASE_URL=url)

    assert raised.value.message.startswith(f"GATEWAY_DATABASE_URL {message}")
    assert "pw" not in raised.value.message


@pytest.mark.parametrize(
    ("variable", "value", "field", "read"),
    [
        ("GATEWAY_MAX_BODY_BYTES", "1", "max_body_bytes", 1),  # the smallest limit
        ("GATEWAY_RETENTION_DAYS", "0", "retention_days", 0),  # purge every settled event
        ("GATEWAY_RETRY_BASE_S", "0", "retry_base_s", 0.0),  # retry at once
        ("GATEWAY_BATCH_WINDOW_S", "0", "batch_window_s", 0.0),  # never wait for a burst
        ("GATEWAY_COMMIT_TIMEOUT_S", "0.25", "commit_timeout_s", 0.25),
        ("GATEWAY_MAX_ATTEMPTS", "", "max_attempts", 22),  # empty is unset
        ("GATEWAY_SIGN_IN_ATTEMPTS", "", "sign_in_attempts", 5),
        ("GATEWAY_SIGN_IN_ATTEMPTS", "1", "sign_in_attempts", 1),
        ("GATEWAY_SIGN_IN_WINDOW_S", "", "sign_in_window_s", 300.0),
        ("GATEWAY_SIGN_IN_WINDOW_S", "0.5", "sign_in_window_s", 0.5),
        ("GATEWAY_LOG_FORMAT", "json", "log_format", "json"),
        ("GATEWAY_TRUSTED_PROXIES", "", "trusted_proxies", 0),  # the peer is the client
        ("GATEWAY_TRUSTED_PROXIES", "2", "trusted_proxies", 2),  # a CDN, then a load balancer
        ("GATEWAY_WORKER_METRICS_BIND", "", "worker_metrics_bind", None),  # no port of its own
        ("GATEWAY_WORKER_METRICS_BIND", "0.0.0.0:9101", "worker_metrics_bind", ("0.0.0.0", 9101)),
        ("GATEWAY_WORKER_METRICS_BIND", "[::1]:0", "worker_metrics_bind", ("::1", 0)),
        ("GATEWAY_METRICS_TOKEN", "", "metrics_token", None),  # /metrics open
        ("GATEWAY_METRICS_TOKEN", "s3cr3t-scrape", "metrics_token", "s3cr3t-scrape"),
        ("GATEWAY_TARGET", "salesforce", "target", "salesforce"),
        ("GATEWAY_TARGET", "salesforce:eu_2", "target", "salesforce:eu_2"),
        (
            "GATEWAY_DATABASE_URL",
            "postgresql+psycopg://u@127.0.0.1/db",
            "database_url",
            "postgresql+psycopg://u@127.0.0.1/db",
        ),
        ("GATEWAY_DATABASE_URL", "sqlite://", "database_url", "sqlite://"),
    ],
)
def test_values_in_range_are_read(
    tmp_path: Path, variable: str, value: str, field: str, read: object
) -> None:
    assert getattr(_settings(tmp_path, **{variable: value}), field) == read


@pytest.mark.parametrize(
    ("env", "public_url"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"GATEWAY_BIND": "127.0.0.1:9001"}, "http://127.0.0.1:9001"),
        ({"GATEWAY_BIND": "localhost:9001"}, "http://localhost:9001"),
        ({"GATEWAY_BIND": "0.0.0.0:9001"}, "http://127.0.0.1:9001"),  # reachable from here
        ({"GATEWAY_BIND": "[::]:9001"}, "http://[::1]:9001"),
        ({"GATEWAY_BIND": "[::1]"}, "http://[::1]:8000"),  # gunicorn's port when none is given
        ({"GATEWAY_BIND": "127.0.0.1:9001,[::1]:9001"}, "http://127.0.0.1:9001"),
        ({"GATEWAY_BIND": "unix:/run/gateway.sock"}, "http://127.0.0.1:8000"),
        ({"PORT": "5000"}, "http://127.0.0.1:5000"),
        (
            {"GATEWAY_BIND": "0.0.0.0:9001", "GATEWAY_PUBLIC_URL": "https://hooks.example/"},
            "https://hooks.example",
        ),
    ],
)
def test_callback_urls_follow_where_the_gateway_serves_unless_a_public_url_is_set(
    tmp_path: Path, env: dict[str, str], public_url: str
) -> None:
    assert _settings(tmp_path, **env).public_url == public_url


@pytest.mark.parametrize(
    ("token", "problems"),
    [
        (None, []),  # none configured: one is generated
        ("k" * 16, []),  # as long as asked
        ("x" * 15, ["is shorter than 16 characters"]),
        ("hunter2", ["is shorter than 16 characters"]),
        (" " + "k" * 16, ["begins or ends with blanks"]),
        ("k" * 16 + "\t", ["begins or ends with blanks"]),
        # blanks are no strength
        (" hunter2" + " " * 12, ["begins or ends with blanks", "is shorter than 16 characters"]),
    ],
)
def test_a_weak_admin_token_is_warned_about(token: str | None, problems: list[str]) -> None:
    warning = admin_token_warning(token)

    if not problems:
        assert warning is None
        return
    assert warning is not None
    assert warning.startswith(f"GATEWAY_ADMIN_TOKEN {problems[0]}")
    assert all(problem in warning for problem in problems)
    assert "use at least 16 random characters" in warning
    assert (token or "").strip() not in warning  # the token itself is never logged


def test_a_generated_admin_token_is_long_enough(tmp_path: Path) -> None:
    token = _settings(tmp_path).ensure_instance_secrets().admin_token

    assert token is not None
    assert len(token) >= 40
    assert admin_token_warning(token) is None
