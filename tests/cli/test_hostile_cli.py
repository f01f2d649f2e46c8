"""Hostile input at the command line (issue 13): escape sequences in catalog data never reach
the terminal raw, out-of-range config values name their key, flags read as flags in --help,
and --debug works on either side of the command name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli.helpers import invoke
from tests.cli.test_pretrain_cli import one_line_error

from graph_store import open_store

OSC_TITLE = "\x1b]0;pwned\x07"  # retitles the window
CLEAR = "\x1b[2J"  # clears the screen
C1_CSI = "\x9b31m"  # the one-byte CSI some terminals obey
LINK = "[link=http://evil.example]click[/link]"  # rich markup would turn it into an OSC 8 hyperlink
TITLE = f"Towel {OSC_TITLE} set {CLEAR} {LINK}"
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what must never be printed (newline and tab are fine)


@pytest.fixture(scope="module")
def evil_store(tmp_path_factory) -> str:
    """A store whose titles, values, attribute names and categories carry escape sequences."""
    folder = tmp_path_factory.mktemp("evil")
    rows = [
        {"id": "p1", "title": TITLE, "description": f"soft {C1_CSI} cotton", "category": [f"Home {CLEAR}", "Bath"],
         "attributes": {"colour": f"red{OSC_TITLE}", f"mat{CLEAR}erial": "cotton", "brand": "[bold]acme[/bold]"}},
        {"id": "p2", "title": "Plain", "category": [f"Home {CLEAR}", "Bath"], "attributes": {"colour": "blue", "brand": "acme"}},
    ]
    (folder / "evil.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    store = str(folder / "evil.db")
    built = invoke("build-kg", str(folder / "evil.jsonl"), "--store", store, "-q")
    assert built.exit_code == 0, built.stderr
    return store


def assert_no_raw_escapes(text: str) -> None:
    assert not RAW.search(text), repr(RAW.search(text).group())
    assert "]8;" not in text.replace("\\x1b]8;", "")  # no OSC 8 hyperlink made from markup


@pytest.mark.parametrize("command", [
    ("query", "product", "p1"),
    ("query", "attribute", "colour"),
    ("query", "attribute", "colour", "--missing"),
    ("stats",),
    ("runs",),
])
def test_escape_sequences_in_catalog_data_are_printed_escaped(evil_store: str, command: tuple[str, ...]) -> None:
    done = invoke(*command, "--store", evil_store)
    assert done.exit_code == 0, done.stderr
    assert_no_raw_escapes(done.stdout + done.stderr)


def test_query_product_shows_escape_sequences_as_text(evil_store: str) -> None:
    shown = invoke("query", "product", "p1", "--store", evil_store).stdout
    assert "\\x1b]0;pwned\\x07" in shown and "\\x1b[2J" in shown and LINK in shown  # visible, literal
    assert "[bold]acme[/bold]" in shown  # markup in a value is shown, not obeyed


def test_json_output_keeps_escape_sequences_exact(evil_store: str) -> None:
    done = invoke("query", "product", "p1", "--store", evil_store, "--format", "json")
    assert_no_raw_escapes(done.stdout)  # C0 and C1 characters are JSON escapes ...
    product = json.loads(done.stdout)  # ... which read back as the exact data
    with open_store(evil_store) as graph:
        stored = graph.get_product("p1").product
    assert product["title"] == stored.title == TITLE and product["description"] == stored.description
    assert C1_CSI in product["description"]


def test_csv_output_to_a_pipe_keeps_the_data_exact(evil_store: str) -> None:
    done = invoke("query", "attribute", "colour", "--store", evil_store, "--format", "csv")
    assert f"red{OSC_TITLE}" in done.stdout  # not a terminal: the data as stored


def test_unknown_product_id_with_escapes_is_echoed_escaped(evil_store: str) -> None:
    done = invoke("query", "product", f"x{CLEAR}", "--store", evil_store)
    assert done.exit_code == 1 and "no product" in done.stderr
    assert_no_raw_escapes(done.stderr)


COMMANDS = [(), ("build-kg",), ("query",), ("query", "product"), ("query", "attribute"), ("stats",), ("export",),
            ("pretrain",), ("complete",), ("runs",), ("evaluate",)]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "kgmm")
def test_help_shows_boolean_flags_as_flags(command: tuple[str, ...]) -> None:
    done = invoke(*command, "--help")
    assert done.exit_code == 0, done.stderr
    assert "<bool>" not in done.stdout and "--help" in done.stdout
    if command and command != ("query",):
        assert "--debug" in done.stdout  # every command takes --debug after its name


def test_debug_after_the_command_name_shows_the_traceback(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.db")
    quiet = invoke("stats", "--store", missing)
    assert quiet.exit_code == 1 and quiet.stderr.startswith("error: no store") and quiet.exception.__class__ is SystemExit
    for args in (("--debug", "stats", "--store", missing), ("stats", "--store", missing, "--debug"),
                 ("query", "product", "p", "--store", missing, "--debug")):
        loud = invoke(*args)
        assert type(loud.exception).__name__ == "StoreError", args  # raised, not turned into one line
    assert invoke("stats", "--store", missing).exception.__class__ is SystemExit  # --debug does not stick


@pytest.mark.parametrize(("section", "key", "value"), [
    ("text", "dropout", 1.5),
    ("model", "dropout", 1.5),
    ("model", "dropout", -0.1),
    ("text", "heads", 0),
    ("model", "heads", 0),
    ("text", "layers", 0),
    ("model", "gumbel_tau", 0.0),
    ("train", "lr", float("inf")),
    ("train", "weight_decay", -1.0),
    ("train", "grad_clip", -1.0),
    ("knowledge", "max_pairs", 0),
    ("objectives", "distill_temperature", float("nan")),
])
def test_config_with_an_out_of_range_value_names_the_key(tmp_path: Path, section: str, key: str, value: float) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(f"{section}:\n  {key}: {_yaml_number(value)}\n", encoding="utf-8")
    done = invoke("pretrain", "--config", str(config), "--store", str(tmp_path / "none.db"))
    one_line_error(_completed(done), f"{section}.{key}")
    assert "internal error" not in done.stderr


def _yaml_number(value: float) -> str:
    return {float("inf"): ".inf"}.get(value, ".nan" if value != value else str(value))


def _completed(result):
    """A CliRunner result in the shape ``one_line_error`` reads (returncode, stdout, stderr)."""
    import subprocess

    return subprocess.CompletedProcess([], result.exit_code, result.stdout, result.stderr)
