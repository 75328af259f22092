"""The reference pages are written from the code, and say what the code does today."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway import config, reference

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("page", reference.PAGES)
def test_the_committed_page_is_what_the_generator_writes(page: str) -> None:
    committed = (ROOT / page).read_text(encoding="utf-8")

    assert committed == reference.regenerated(page, ROOT), (
        f"{page} is out of date: run python -m gateway.reference"
    )


def test_every_variable_the_settings_read_is_declared() -> None:
    source = Path(config.__file__).read_text(encoding="utf-8")
    declared = {variable.documented().name for variable in config.VARIABLES}

    assert set(re.findall(r"\bGATEWAY_[A-Z_]*[A-Z]\b", source)) <= declared


@pytest.mark.parametrize(
    ("number", "default", "allowed"),
    [
        # a count of nothing is refused
        (config.MAX_BODY_BYTES, "`1048576`", "1 or more"),
        # a wait that may be none
        (config.BATCH_WINDOW_S, "`0.5`", "0 or more"),
        # a timeout that must wait
        (config.COMMIT_TIMEOUT_S, "`4`", "more than 0"),
        (config.SIGN_IN_WINDOW_S, "`300`", "more than 0 and at most 86400"),
        # a default that means "not set"
        (config.PORT, "unset", "1 to 65535"),
    ],
)
def test_a_number_is_documented_with_the_bounds_it_is_read_with(
    number: config.Number[int] | config.Number[float], default: str, allowed: str
) -> None:
    documented = number.documented()

    assert (documented.default, documented.allowed) == (default, allowed)


def test_the_function_reference_shows_how_to_call_each_function() -> None:
    assert [
        reference.call_form(name) for name in ("sf_date", "replace", "concat", "substring")
    ] == [
        "sf_date(value)",
        "replace(text, old, new)",
        "concat(parts...)",  # any number of arguments
        "substring(text, start, length?)",  # one optional argument
    ]


def test_a_page_that_is_out_of_date_is_named_with_the_command_that_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for page in reference.PAGES:
        copy = tmp_path / page
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(reference.regenerated(page, ROOT), encoding="utf-8")
    stale = tmp_path / "docs" / "configuration.md"
    stale.write_text(stale.read_text(encoding="utf-8").replace("1048576", "1"), encoding="utf-8")
    monkeypatch.setattr(reference, "ROOT", tmp_path)

    assert reference.main(["--check"]) == 1
    assert "docs/configuration.md" in capsys.readouterr().err
    assert reference.main([]) == 0
    assert reference.main(["--check"]) == 0
    assert "`1048576`" in stale.read_text(encoding="utf-8")
