"""The in-process Neo4j launcher: a real Neo4j 5.26 server over Bolt, started from Python.

One server is shared by the module (a start costs seconds).  Tests that need Java skip when
``java`` is absent, or when ``mvn`` is absent and the launcher has never been built.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from tests.neo4j_server import Neo4jLauncherError, Neo4jServer, build_launcher

neo4j = pytest.importorskip("neo4j")
from neo4j.exceptions import AuthError, ServiceUnavailable  # noqa: E402

PASSWORD = "kgmm-test-pw"


def _java_tools_missing() -> str | None:
    if shutil.which("java") is None:
        return "java not installed (apt-get install -y openjdk-17-jdk-headless maven)"
    if shutil.which("javac") is None or shutil.which("mvn") is None:
        try:
            build_launcher()  # an earlier cached build is enough
        except Neo4jLauncherError as exc:
            return f"cannot build the Neo4j launcher: {exc.summary}"
    return None


@pytest.fixture(scope="module")
def server() -> Iterator[Neo4jServer]:
    reason = _java_tools_missing()
    if reason:
        pytest.skip(reason)
    srv = Neo4jServer(password=PASSWORD)
    srv.start()
    data_dir = srv.data_dir
    try:
        yield srv
    finally:
        srv.stop()
    assert not srv.running
    assert not data_dir.exists(), "stop() must delete the temporary data directory"


@pytest.mark.neo4j
def test_create_and_read_back_a_node(server: Neo4jServer) -> None:
    assert server.uri.startswith("bolt://127.0.0.1:")
    assert server.log_path.is_file()
    with server.driver() as driver:
        driver.execute_query(
            "CREATE (:Product {sku: $sku, title: $title})", sku="P-1", title="Red mug"
        )
        records, _, _ = driver.execute_query(
            "MATCH (p:Product {sku: $sku}) RETURN p.title AS title", sku="P-1"
        )
    assert [r["title"] for r in records] == ["Red mug"]


@pytest.mark.neo4j
def test_wrong_password_is_rejected_without_locking_the_user(server: Neo4jServer) -> None:
    for _ in range(4):  # more than Neo4j's default lock-out threshold of 3
        with neo4j.GraphDatabase.driver(server.uri, auth=(server.user, "not-the-password")) as bad:
            with pytest.raises(AuthError):
                bad.verify_connectivity()
    with server.driver() as good:
        good.verify_connectivity()


@pytest.mark.neo4j
def test_kill_then_restart_keeps_committed_data(server: Neo4jServer) -> None:
    uri, data_dir = server.uri, server.data_dir
    with server.driver() as driver:
        driver.execute_query("CREATE (:Crash {n: 1})")
        driver.execute_query("CREATE (:Crash {n: 2})")

    server.kill()  # SIGKILL: no clean shutdown, recovery from the transaction log
    assert not server.running
    with neo4j.GraphDatabase.driver(uri, auth=server.auth, connection_timeout=2) as driver:
        with pytest.raises(ServiceUnavailable):
            driver.verify_connectivity()

    server.restart()
    assert server.running
    assert (server.uri, server.data_dir) == (uri, data_dir)
    with server.driver() as driver:
        records, _, _ = driver.execute_query("MATCH (c:Crash) RETURN c.n AS n ORDER BY n")
        assert [r["n"] for r in records] == [1, 2]
        records, _, _ = driver.execute_query("MATCH (p:Product) RETURN count(p) AS c")
        assert records[0]["c"] == 1


def test_missing_java_gives_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(Neo4jLauncherError) as info:
        build_launcher(cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "\n" not in message
    assert "java" in message and "apt-get install" in message
