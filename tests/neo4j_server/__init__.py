"""Start and stop a real Neo4j 5.26 Community server for tests, in-process in a small JVM.

Development tooling, not part of the installed package: the test suite's Neo4j fixture
(``tests/conftest.py``), the benchmarks and anyone without a Neo4j at hand use it from a
checkout, as ``python -m tests.neo4j_server`` (run from the repository root).

There is no Neo4j installation: ``Neo4jLauncher.java`` (next to this file) embeds Neo4j through
``DatabaseManagementServiceBuilder`` with only the Bolt connector enabled on a loopback port.

* :func:`build_launcher` resolves Neo4j's jars with Maven and compiles the launcher with
  ``javac``, once; the result is cached in ``~/.cache/kgmm/neo4j-launcher/<hash>`` (the hash covers
  ``pom.xml`` and the Java source).  Nothing is written inside the repository.
* :class:`Neo4jServer` starts the JVM, waits for Bolt, and stops / kills / restarts it::

      with Neo4jServer(password="secret") as server:
          with server.driver() as driver:
              driver.execute_query("RETURN 1")

Only the standard library is imported at module level; the ``neo4j`` driver is imported lazily.
Needs ``java`` and ``javac`` (17+) and ``mvn`` (only for the first build), e.g. on Debian:
``apt-get install -y openjdk-17-jdk-headless maven``.
"""

from .launcher import DEFAULT_PASSWORD, LauncherBuild, Neo4jLauncherError, build_launcher
from .server import Neo4jServer, free_port

__all__ = [
    "DEFAULT_PASSWORD",
    "LauncherBuild",
    "Neo4jLauncherError",
    "Neo4jServer",
    "build_launcher",
    "free_port",
]
