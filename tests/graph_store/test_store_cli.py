"""Every entry point takes a store the same way, credentials included, against a real Neo4j:
``--store/--user/--password/--database`` reach pretrain, complete and evaluate as they reach
build-kg and query, and a build into a server says where its report went.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph_store import GraphStore, ProductNode, AttributeEdge, StoreSpec, StoreUnavailableError
from tests.cli.helpers import ROOT, kgmm

pytestmark = pytest.mark.neo4j
NO_ENV_CREDENTIALS = {"NEO4J_USER": "", "NEO4J_PASSWORD": "", "NEO4J_DATABASE": ""}


def flags(target, password: str | None = None) -> list[str]:
    return ["--store", target.uri, "--user", target.user, "--password", password or target.password, "--database", target.database]


def test_bolt_store_build_report_goes_to_a_named_file_and_says_so(neo4j_target, neo4j_store: GraphStore, tmp_path: Path) -> None:
    catalog = ROOT / "examples" / "catalog.jsonl"
    result = kgmm("build-kg", str(catalog), *flags(neo4j_target), "-q", cwd=tmp_path, env=NO_ENV_CREDENTIALS)
    assert result.returncode in (0, 3), result.stderr
    reports = sorted(p.name for p in tmp_path.glob("*.json"))
    expected = f"kgmm-build-report-{StoreSpec(neo4j_target.uri, database=neo4j_target.database).slug()}.json"
    assert reports == [expected] and "kgmm-build-report.json" not in reports
    assert expected in result.stdout  # the summary names it
    assert json.loads((tmp_path / expected).read_text(encoding="utf-8"))["products"] > 0


@pytest.mark.parametrize("command", [["pretrain", "--max-steps", "1"], ["complete", "--model", "no-such-model"], ["evaluate", "--quick"]])
def test_wrong_password_flag_reaches_every_entry_point(neo4j_target, command: list[str], tmp_path: Path) -> None:
    result = kgmm(*command, *flags(neo4j_target, password="not-the-password"), "--out" if command[0] == "evaluate" else "--quiet",
                  *([str(tmp_path / "eval")] if command[0] == "evaluate" else []), cwd=tmp_path, env=NO_ENV_CREDENTIALS)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "refused the credentials" in result.stderr and "not-the-password" not in result.stderr


def test_pretrain_with_credential_flags_opens_the_server_store(neo4j_target, neo4j_store: GraphStore, tmp_path: Path) -> None:
    """The right flags (and no NEO4J_* variables) open the store: an empty graph is the next complaint."""
    result = kgmm("pretrain", *flags(neo4j_target), "--max-steps", "1", "-q", cwd=tmp_path, env=NO_ENV_CREDENTIALS)
    assert result.returncode == 1 and "holds no products" in result.stderr, result.stderr


def test_load_snapshot_takes_a_store_spec_with_credentials(neo4j_target, neo4j_store: GraphStore) -> None:
    from kgmm.training.pipeline import load_snapshot

    neo4j_store.upsert_products([ProductNode("p1", "Red mug")], [AttributeEdge("p1", "color", "red", "catalog")])
    spec = StoreSpec(neo4j_target.uri, user=neo4j_target.user, password=neo4j_target.password, database=neo4j_target.database)
    assert load_snapshot(spec).num_products == 1
    assert load_snapshot(neo4j_store).num_products == 1  # an open store is used and left open
    assert neo4j_store.stats().products == 1
    with pytest.raises(StoreUnavailableError, match="refused the credentials"):
        load_snapshot(StoreSpec(neo4j_target.uri, user=neo4j_target.user, password="wrong", database=neo4j_target.database))
