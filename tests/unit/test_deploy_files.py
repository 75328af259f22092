"""The deployment files run the commands, set the variables and ask the health endpoint that the
gateway has and docs/deploy.md describes.

No container engine or systemd runs here: each file is parsed as its tool would read it (the
Dockerfile's instructions, compose.yaml as YAML, the units as INI), and what it names is
checked against the gateway itself (its CLI, the settings it reads, its routes) and the docs.
"""

from __future__ import annotations

import ast
import configparser
import io
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from dockerfile_parse import DockerfileParser
from dotenv import dotenv_values
from markdown_it import MarkdownIt
from markdown_it.token import Token

from gateway import cli
from gateway.config import ServerSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
#: What every host of one database must be given alike (docs/deploy.md, "Several hosts").
SHARED = {"GATEWAY_DATABASE_URL", "GATEWAY_SECRET_KEY", "GATEWAY_ADMIN_TOKEN", "GATEWAY_PUBLIC_URL"}
#: Values for the variables compose.yaml requires from its .env, as an admin would give them.
COMPOSE_DOTENV = {
    "DOMAIN": "hooks.example.com",
    "POSTGRES_PASSWORD": "0123456789abcdef",
    "GATEWAY_SECRET_KEY": "a long random test key, not a real one",
    "GATEWAY_ADMIN_TOKEN": "test-admin-token-0123456789",
}


# --- reading the files as their tools do --------------------------------------------------


@cache
def dockerfile() -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO((ROOT / "Dockerfile").read_bytes()))


def instructions(name: str) -> list[str]:
    return [i["value"] for i in dockerfile().structure if i["instruction"] == name]


def image_command() -> list[str]:
    command: list[str] = json.loads(dockerfile().cmd)
    return command


def healthcheck_url() -> str:
    """The URL the HEALTHCHECK's ``python -c`` program opens (read from its syntax tree)."""
    [healthcheck] = instructions("HEALTHCHECK")
    _options, _, exec_form = healthcheck.partition(" CMD ")
    program, flag, code = json.loads(exec_form)
    assert (program, flag) == ("python", "-c")
    [url] = [
        node.value
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Constant) and str(node.value).startswith("http")
    ]
    return str(url)


@cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def gateway_services() -> dict[str, dict[str, Any]]:
    """The services that run the image the Dockerfile builds."""
    return {name: s for name, s in compose()["services"].items() if s.get("build") == "."}


def service_command(service: Mapping[str, Any]) -> list[str]:
    return list(service.get("command") or image_command())


def interpolated(value: str, dotenv: Mapping[str, str]) -> str:
    """``${NAME}``, ``${NAME:?message}`` and ``${NAME:-default}`` as compose fills them in."""

    def fill(match: re.Match[str]) -> str:
        name, operator, word = match.group(1), match.group(2), match.group(3)
        if name in dotenv:
            return dotenv[name]
        assert operator == ":-", f"compose.yaml requires {name}: {word}"
        return str(word)

    return re.sub(r"\$\{(\w+)(?:(:\?|:-)([^}]*))?\}", fill, value)


def required_by_compose() -> set[str]:
    """The variables compose.yaml refuses to start without (``${NAME:?message}``)."""
    text = (ROOT / "compose.yaml").read_text()
    return set(re.findall(r"\$\{(\w+):\?", text))


def service_environment(service: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: interpolated(str(value), COMPOSE_DOTENV)
        for name, value in (service.get("environment") or {}).items()
    }


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNITS / name).read_text())
    return parser


def unit_command(name: str) -> list[str]:
    """ExecStart as the command an admin types: the program's name without its directory."""
    program, *args = shlex.split(unit(name)["Service"]["ExecStart"])
    return [PurePosixPath(program).name, *args]


def unit_environment(name: str) -> dict[str, str]:
    assignments = shlex.split(unit(name)["Service"].get("Environment", ""))
    return dict(assignment.split("=", 1) for assignment in assignments)


UNIT_NAMES = sorted(path.name for path in UNITS.glob("*.service"))


# --- the docs ------------------------------------------------------------------------------


@cache
def doc_tokens() -> list[Token]:
    markdown = MarkdownIt("commonmark").enable("table")
    return markdown.parse((ROOT / "docs" / "deploy.md").read_text())


def section(title: str) -> list[Token]:
    """The tokens under the second-level heading ``title``, up to the next one."""
    tokens = doc_tokens()
    starts = [
        n for n, token in enumerate(tokens) if token.type == "heading_open" and token.tag == "h2"
    ]
    for start, end in zip(starts, [*starts[1:], len(tokens)], strict=True):
        if tokens[start + 1].content.startswith(title):
            return tokens[start:end]
    raise AssertionError(f"docs/deploy.md has no section {title!r}")


def code_spans(tokens: list[Token]) -> set[str]:
    def walk(tokens: list[Token]) -> Iterator[str]:
        for token in tokens:
            if token.type == "code_inline":
                yield token.content
            yield from walk(token.children or [])

    return set(walk(tokens))


def commands_shown(tokens: list[Token]) -> set[str]:
    """Commands in code spans, and in shell blocks line by line, comments dropped."""
    lines = [
        line.split("  #")[0].strip()
        for token in tokens
        if token.type == "fence" and token.info == "sh"
        for line in token.content.splitlines()
    ]
    return code_spans(tokens) | set(lines)


def dotenv_blocks(tokens: list[Token]) -> list[dict[str, str]]:
    return [
        {k: v or "" for k, v in dotenv_values(stream=io.StringIO(token.content)).items()}
        for token in tokens
        if token.type == "fence" and token.info == "dotenv"
    ]


def variables_named(tokens: list[Token]) -> set[str]:
    text = " ".join(code_spans(tokens)) + " ".join(t.content for t in tokens if t.type == "fence")
    return set(re.findall(r"\bGATEWAY_[A-Z_]+\b", text))


# --- the gateway itself --------------------------------------------------------------------


class _Recording(dict[str, str]):
    """An environment that notes every name it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


@cache
def variables_read() -> frozenset[str]:
    """Every GATEWAY_ variable the gateway's settings and gunicorn's read."""
    env = _Recording()
    Settings.from_env(env)
    ServerSettings.from_env(env)
    return frozenset(name for name in env.asked if name.startswith("GATEWAY_"))


def cli_command(argv: list[str]) -> str:
    """The ``gateway`` subcommand ``argv`` runs, its options parsed as click parses them."""
    assert argv[0] == "gateway", argv
    command: click.Command = cli.main
    words = argv[1:]
    path = []
    while isinstance(command, click.Group) and words and words[0] in command.commands:
        path.append(words[0])
        command = command.commands[words.pop(0)]
    assert not isinstance(command, click.Group), f"{shlex.join(argv)} names no command"
    command.make_context(" ".join(["gateway", *path]), words)
    return " ".join(path)


def check_settings(env: Mapping[str, str]) -> tuple[Settings, ServerSettings]:
    """The settings ``env`` gives: a value the gateway could not use raises ConfigurationError."""
    return Settings.from_env(env), ServerSettings.from_env(env)


# --- the Dockerfile ------------------------------------------------------------------------


def test_the_image_is_slim_python_and_runs_as_a_user_of_its_own() -> None:
    [base] = instructions("FROM")
    users = instructions("USER")

    assert re.fullmatch(r"python:3\.\d+-slim", base)
    assert users and users[-1] not in ("root", "0")
    last_user = max(i["startline"] for i in dockerfile().structure if i["instruction"] == "USER")
    assert all(
        i["startline"] > last_user
        for i in dockerfile().structure
        if i["instruction"] in ("CMD", "HEALTHCHECK")
    )


def test_the_image_serves_with_gunicorn_and_the_shipped_config() -> None:
    copied = {word for value in instructions("COPY") for word in shlex.split(value)}

    program, option, config, app = image_command()

    assert (program, option) == ("gunicorn", "--config")
    assert config in copied and (ROOT / config).is_file()
    assert f"{app.partition(':')[0]}.py" in copied
    assert shlex.join(image_command()) in commands_shown(doc_tokens())


def test_the_healthcheck_asks_readyz_where_the_image_listens(tmp_path: Path) -> None:
    url = urlsplit(healthcheck_url())
    bind = ServerSettings.from_env(dockerfile().envs).bind

    assert url.path == "/readyz"
    assert url.path in routes(tmp_path)
    assert url.path in code_spans(doc_tokens())
    assert bind.endswith(f":{url.port}")
    assert instructions("EXPOSE") == [str(url.port)]


def routes(instance: Path) -> set[str]:
    """The paths the app serves, from an app whose database is never opened (never created)."""
    from cryptography.fernet import Fernet

    from gateway.services import Gateway
    from gateway.web import create_app

    settings = Settings(
        instance_path=instance,
        database_url=f"sqlite:///{instance / 'gateway.db'}",
        admin_token="t" * 20,
        secret_key=Fernet.generate_key().decode(),
    )
    gw = Gateway(settings)
    try:
        return {rule.rule for rule in create_app(gateway=gw).url_map.iter_rules()}
    finally:
        gw.close()


# --- compose.yaml --------------------------------------------------------------------------


def test_compose_runs_postgresql_the_migration_the_web_and_two_workers() -> None:
    services = compose()["services"]
    gateways = gateway_services()
    commands = {name: service_command(s) for name, s in gateways.items()}

    assert services["db"]["image"].startswith("postgres:")
    assert cli_command(commands["migrate"]) == "db upgrade"
    assert commands["web"] == image_command()
    assert cli_command(commands["worker"]) == "worker"
    assert gateways["worker"]["deploy"]["replicas"] == 2
    for name in ("web", "worker"):
        assert gateways[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    assert gateways["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}


def test_the_database_is_kept_in_a_volume() -> None:
    volumes = [v.split(":") for v in compose()["services"]["db"]["volumes"]]

    assert ["database", "/var/lib/postgresql/data"] in volumes
    assert "database" in compose()["volumes"]


def test_only_the_web_container_has_a_health_check() -> None:
    """The image's check asks /readyz, which only the web process answers."""
    for name, service in gateway_services().items():
        disabled = service.get("healthcheck", {}).get("disable", False)
        assert disabled is (name != "web"), name


def test_every_gateway_container_gets_the_shared_values_alike_and_valid() -> None:
    environments = {name: service_environment(s) for name, s in gateway_services().items()}

    for name, env in environments.items():
        settings, _ = check_settings({**dockerfile().envs, **env})
        assert SHARED <= env.keys(), name
        assert {k: env[k] for k in SHARED} == {k: environments["web"][k] for k in SHARED}
        assert settings.database_url.startswith("postgresql+psycopg://gateway:")
        assert settings.public_url == f"https://{COMPOSE_DOTENV['DOMAIN']}"
    db = compose()["services"]["db"]["environment"]
    database = settings.database_url.rsplit("@", 1)[1]
    assert database == f"db/{db['POSTGRES_DB']}"


def test_the_web_container_trusts_the_one_proxy_in_front() -> None:
    env = service_environment(gateway_services()["web"])

    settings, _ = check_settings(env)

    assert settings.trusted_proxies == 1
    assert [name for name, s in compose()["services"].items() if s.get("ports")] == ["proxy"]


def test_the_docs_give_every_variable_compose_requires() -> None:
    [dotenv] = dotenv_blocks(section("With containers"))

    assert dotenv.keys() == required_by_compose() == COMPOSE_DOTENV.keys()


def test_caddy_proxies_to_where_the_web_process_listens() -> None:
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    placeholders = dict(re.findall(r"\{\$(\w+)(?::([^}]*))?\}", caddyfile))
    proxy = compose()["services"]["proxy"]
    upstream = proxy["environment"]["UPSTREAM"]
    web_port = ServerSettings.from_env(dockerfile().envs).bind.rpartition(":")[2]

    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert proxy["environment"].keys() == placeholders.keys()
    assert upstream == f"web:{web_port}"
    # On a host, the web unit listens where gunicorn does by default.
    assert placeholders["UPSTREAM"] == ServerSettings.bind


# --- the systemd units ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "command"),
    [("gateway-web.service", "serve"), ("gateway-worker@.service", "worker")],
)
def test_each_unit_runs_its_gateway_command_as_the_docs_show(name: str, command: str) -> None:
    argv = unit_command(name)
    service = unit(name)["Service"]

    assert cli_command(argv) == command
    assert shlex.join(argv) in commands_shown(doc_tokens())
    assert service["User"] == "gateway"
    assert service["EnvironmentFile"] in commands_shown(doc_tokens()) | code_spans(doc_tokens())


def test_the_units_and_the_docs_environment_file_make_valid_settings() -> None:
    [gateway_env] = dotenv_blocks(section("On a host"))

    for name in UNIT_NAMES:
        settings, server = check_settings({**gateway_env, **unit_environment(name)})
        assert settings.instance_path == Path(unit(name)["Service"]["WorkingDirectory"])
    assert SHARED <= gateway_env.keys()
    assert server.bind.startswith("127.0.0.1:")  # only the proxy on this host reaches it


# --- every file, and the docs --------------------------------------------------------------


def variables_set() -> dict[str, set[str]]:
    """The GATEWAY_ variables each file (or docs block) sets, by where they are set."""
    found = {
        "Dockerfile": set(dockerfile().envs),
        **{
            f"compose.yaml {n}": set(s.get("environment", {}))
            for n, s in gateway_services().items()
        },
        **{n: set(unit_environment(n)) for n in UNIT_NAMES},
        **{
            f"docs/deploy.md block {n}": set(block)
            for n, block in enumerate(dotenv_blocks(doc_tokens()))
        },
    }
    return {where: {v for v in names if v.startswith("GATEWAY_")} for where, names in found.items()}


@pytest.mark.parametrize("where", sorted(variables_set()))
def test_every_variable_set_is_one_the_gateway_reads_and_the_docs_name(where: str) -> None:
    names = variables_set()[where]

    assert names <= variables_read(), names - variables_read()
    assert names <= variables_named(doc_tokens()), names - variables_named(doc_tokens())


def test_the_several_hosts_section_names_what_every_host_must_share() -> None:
    listed = {
        item.children[0].content
        for item in section("Several hosts")
        if item.type == "inline" and item.children and item.children[0].type == "code_inline"
    }

    assert listed == SHARED
