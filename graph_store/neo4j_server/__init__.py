"""Start and stop a real Neo4j 5.26 Community server for tests, in-process in a small JVM.

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

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Sequence

__all__ = [
    "DEFAULT_PASSWORD",
    "LauncherBuild",
    "Neo4jLauncherError",
    "Neo4jServer",
    "build_launcher",
]

PACKAGE_DIR = Path(__file__).resolve().parent
POM_PATH = PACKAGE_DIR / "pom.xml"
JAVA_SOURCE_PATH = PACKAGE_DIR / "src" / "main" / "java" / "kgmm" / "Neo4jLauncher.java"
MAIN_CLASS = "kgmm.Neo4jLauncher"
PASSWORD_ENV = "KGMM_NEO4J_PASSWORD"
CACHE_ENV = "KGMM_NEO4J_LAUNCHER_CACHE"
READY_MARKER = "KGMM_NEO4J_READY"
FAILED_MARKER = "KGMM_NEO4J_FAILED"
DEFAULT_PASSWORD = "kgmm-test-password"
MIN_JAVA_VERSION = 17

# JVM options: modest heap (the machine is shared with the tests) plus the module openings that
# Neo4j's own launcher passes (avoids reflective-access warnings and slower fallbacks).
DEFAULT_HEAP = "1g"
DEFAULT_PAGECACHE = "256m"
BASE_JVM_OPTIONS: tuple[str, ...] = (
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-OmitStackTraceInFastThrow",
    "-Dfile.encoding=UTF-8",
    "-Djava.awt.headless=true",
    "-Dlog4j2.disable.jmx=true",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
)


class Neo4jLauncherError(RuntimeError):
    """Building, starting or stopping the in-process Neo4j server failed.

    ``str(error)`` starts with a one-line summary; when a log tail is available it follows on the
    next lines.  The one-line summary alone is in :attr:`summary`.
    """

    def __init__(self, summary: str, details: str = "") -> None:
        self.summary = summary
        self.details = details
        super().__init__(summary + ("\n" + details if details else ""))


# --------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LauncherBuild:
    """A compiled launcher: everything needed to run ``java kgmm.Neo4jLauncher``."""

    directory: Path
    """Cache directory of this build (``.../neo4j-launcher/<hash>``)."""
    classes_dir: Path
    """Directory holding ``kgmm/Neo4jLauncher.class``."""
    dependency_jars: tuple[Path, ...]
    """Neo4j and its dependencies, as resolved by Maven (in the local Maven repository)."""
    java: str
    """The ``java`` executable."""
    neo4j_version: str

    @property
    def classpath(self) -> str:
        return os.pathsep.join([str(self.classes_dir), *map(str, self.dependency_jars)])

    def is_complete(self) -> bool:
        """True while the class file and every dependency jar still exist."""
        if not (self.classes_dir / "kgmm" / "Neo4jLauncher.class").is_file():
            return False
        return all(jar.is_file() for jar in self.dependency_jars)

    def command(
        self,
        home: Path,
        port: int,
        *,
        heap: str = DEFAULT_HEAP,
        pagecache: str = DEFAULT_PAGECACHE,
        host: str = "127.0.0.1",
        jvm_options: Sequence[str] = (),
    ) -> list[str]:
        """The command line (without the classpath, which goes in ``$CLASSPATH``; see
        :meth:`environment`) and without the password (``$KGMM_NEO4J_PASSWORD``)."""
        return [
            self.java,
            f"-Xmx{heap}",
            *BASE_JVM_OPTIONS,
            *jvm_options,
            MAIN_CLASS,
            str(home),
            str(port),
            f"--host={host}",
            f"--pagecache={pagecache}",
        ]

    def environment(self, password: str, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["CLASSPATH"] = self.classpath  # keeps `ps` output short
        env[PASSWORD_ENV] = password
        return env


def _source_hash() -> str:
    digest = hashlib.sha256()
    for path in (POM_PATH, JAVA_SOURCE_PATH):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _default_cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "kgmm" / "neo4j-launcher"


def _find_java_tool(name: str) -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def _require_tool(name: str, purpose: str) -> str:
    path = _find_java_tool(name) if name in ("java", "javac") else shutil.which(name)
    if path is None:
        raise Neo4jLauncherError(
            f"`{name}` not found on PATH (needed to {purpose}); install a JDK 17+ and Maven, "
            "e.g. `apt-get install -y openjdk-17-jdk-headless maven`"
        )
    return path


def _java_major_version(java: str) -> int:
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise Neo4jLauncherError(f"cannot run `{java} -version`: {exc}") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        raise Neo4jLauncherError(
            f"cannot parse the Java version from `{java} -version`: {proc.stderr.strip()[:200]!r}"
        )
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_..."
        major = int(match.group(2))
    return major


def _neo4j_version_from_pom() -> str:
    match = re.search(r"<neo4j\.version>([^<]+)</neo4j\.version>", POM_PATH.read_text("utf-8"))
    return match.group(1).strip() if match else "unknown"


def _tail(path: Path | None, lines: int = 30, max_chars: int = 6000) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    tail = "\n".join(text.splitlines()[-lines:])
    return tail[-max_chars:]


def _last_meaningful_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
        if line and not line.startswith("[INFO]"):
            return line[:500]
    return ""


class _FileLock:
    """Exclusive advisory lock on a file (POSIX); a no-op where fcntl is unavailable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None

    def __enter__(self) -> "_FileLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab")
        try:
            import fcntl

            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._fh is not None
        try:
            import fcntl

            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        except ImportError:  # pragma: no cover
            pass
        self._fh.close()
        self._fh = None


_BUILD_MEMO: dict[Path, LauncherBuild] = {}


def _load_cached_build(directory: Path, java: str) -> LauncherBuild | None:
    try:
        meta = json.loads((directory / "build.json").read_text("utf-8"))
        build = LauncherBuild(
            directory=directory,
            classes_dir=directory / "classes",
            dependency_jars=tuple(Path(p) for p in meta["dependency_jars"]),
            java=java,
            neo4j_version=str(meta.get("neo4j_version", "unknown")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return build if build.is_complete() else None


def build_launcher(
    cache_dir: Path | str | None = None, *, force: bool = False, timeout: float = 1800.0
) -> LauncherBuild:
    """Compile the launcher once and return the cached build.

    ``cache_dir`` is the cache *root*; the build lives in ``<cache_dir>/<hash>`` where the hash
    covers ``pom.xml`` and ``Neo4jLauncher.java``.  The default root is
    ``$KGMM_NEO4J_LAUNCHER_CACHE`` or ``~/.cache/kgmm/neo4j-launcher`` (``$XDG_CACHE_HOME``
    respected).  A cached build is reused without running Maven as long as the class file and all
    jars it references (in the local Maven repository) still exist.  The first build needs
    ``mvn`` and network access to Maven Central (or a configured mirror) unless ``~/.m2`` already
    holds the jars.  Concurrent callers (e.g. pytest-xdist workers) serialise on a lock file.

    Raises :class:`Neo4jLauncherError` when ``java``/``javac``/``mvn`` are missing or fail.
    """
    java = _require_tool("java", "run the Neo4j launcher")
    root = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_root()
    directory = (root / _source_hash()).absolute()

    if not force:
        memo = _BUILD_MEMO.get(directory)
        if memo is not None and memo.is_complete():
            return memo
        cached = _load_cached_build(directory, java)
        if cached is not None:
            _BUILD_MEMO[directory] = cached
            return cached

    with _FileLock(root / f"{directory.name}.lock"):
        if not force:
            cached = _load_cached_build(directory, java)  # another process may have built it
            if cached is not None:
                _BUILD_MEMO[directory] = cached
                return cached
        build = _build_into(directory, java, timeout)
    _BUILD_MEMO[directory] = build
    return build


def _run_logged(cmd: list[str], log: Path, what: str, timeout: float, cwd: Path) -> None:
    with open(log, "ab") as fh:
        fh.write(("$ " + " ".join(cmd) + "\n").encode())
        fh.flush()
        try:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise Neo4jLauncherError(
                f"{what} timed out after {timeout:.0f}s (log: {log})", _tail(log)
            ) from exc
        except OSError as exc:
            raise Neo4jLauncherError(f"{what} could not run: {exc}") from exc
    if proc.returncode != 0:
        tail = _tail(log, lines=40)
        line = _last_meaningful_line(tail) or "no output"
        raise Neo4jLauncherError(
            f"{what} failed (exit {proc.returncode}): {line} (log: {log})", tail
        )


def _build_into(directory: Path, java: str, timeout: float) -> LauncherBuild:
    javac = _require_tool("javac", "compile the Neo4j launcher")
    mvn = _require_tool("mvn", "download Neo4j's jars from Maven Central")
    major = _java_major_version(java)
    if major < MIN_JAVA_VERSION:
        raise Neo4jLauncherError(
            f"Java {MIN_JAVA_VERSION}+ is required for Neo4j 5.26, but `{java}` is Java {major}; "
            "install openjdk-17-jdk-headless or set JAVA_HOME"
        )

    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{directory.name}.tmp-", dir=directory.parent))
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the cache may be shared
        # Outside the staging dir, so that it survives a failed build for inspection.
        log = directory.with_name(directory.name + ".build.log")
        log.write_bytes(b"")
        classpath_file = staging / "classpath.txt"
        # Resolve the runtime classpath only: no `target/` directory in the repository, and
        # nothing but the jars is downloaded.  -B/-ntp keep the log readable.
        _run_logged(
            [
                mvn,
                "-B",
                "-ntp",
                "-Dstyle.color=never",
                "-f",
                str(POM_PATH),
                "dependency:build-classpath",
                "-Dmdep.includeScope=runtime",
                f"-Dmdep.outputFile={classpath_file}",
            ],
            log,
            "`mvn dependency:build-classpath` (resolving Neo4j jars)",
            timeout,
            cwd=staging,
        )
        try:
            raw = classpath_file.read_text("utf-8").strip()
        except OSError as exc:
            raise Neo4jLauncherError(f"Maven wrote no classpath file (log: {log})") from exc
        jars = tuple(Path(p) for p in raw.split(os.pathsep) if p)
        if not any(j.name.startswith("neo4j-bolt-") for j in jars):
            raise Neo4jLauncherError(f"Maven's classpath lacks neo4j-bolt (log: {log})")

        classes = staging / "classes"
        classes.mkdir()
        _run_logged(
            [
                javac,
                "-nowarn",
                "-encoding",
                "UTF-8",
                "--release",
                str(MIN_JAVA_VERSION),
                "-cp",
                os.pathsep.join(map(str, jars)),
                "-d",
                str(classes),
                str(JAVA_SOURCE_PATH),
            ],
            log,
            "`javac` (compiling Neo4jLauncher.java)",
            timeout,
            cwd=staging,
        )
        meta = {
            "neo4j_version": _neo4j_version_from_pom(),
            "dependency_jars": [str(j) for j in jars],
            "java_major": major,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (staging / "build.json").write_text(json.dumps(meta, indent=1), "utf-8")

        if directory.exists():  # stale/incomplete earlier build (we hold the lock)
            shutil.rmtree(directory, ignore_errors=True)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    build = _load_cached_build(directory, java)
    if build is None:
        raise Neo4jLauncherError(f"launcher build in {directory} is incomplete after building")
    return build


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host`` (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Started servers not stopped yet; strong references so that atexit can still stop them.
_LIVE_SERVERS: "set[Neo4jServer]" = set()


@atexit.register
def _stop_leftover_servers() -> None:  # pragma: no cover - exercised at interpreter exit
    for server in list(_LIVE_SERVERS):
        try:
            server.stop(timeout=15)
        except Exception:
            pass


class Neo4jServer:
    """A Neo4j 5.26 Community server running in a child JVM, reachable over Bolt on loopback.

    ``port=None`` picks a free port on :meth:`start`; ``data_dir=None`` creates a temporary
    directory that :meth:`stop` deletes (a given ``data_dir`` is kept).  The port and the data
    directory stay the same across :meth:`restart`, so committed data survives a :meth:`kill`
    followed by :meth:`restart` (Neo4j recovers from its transaction log).

    The JVM's stderr (Neo4j's user log and the launcher's messages) goes to :attr:`log_path`:
    ``log_path`` if given, else ``<data_dir>.log`` beside a temporary data directory (kept when
    a start fails, so the error message can point to it; deleted by :meth:`stop`), else
    ``<data_dir>/launcher.log``.  Neo4j's debug log is ``<data_dir>/logs/debug.log``.
    Startup failures raise :class:`Neo4jLauncherError` with the log's tail.

    The JVM (``-Xmx1g`` and a 256 MiB page cache by default; about 400 MB resident when idle)
    also stops by itself when this Python process dies, because it watches its stdin pipe.
    """

    def __init__(
        self,
        password: str = DEFAULT_PASSWORD,
        port: int | None = None,
        data_dir: Path | str | None = None,
        *,
        host: str = "127.0.0.1",
        heap: str = DEFAULT_HEAP,
        pagecache: str = DEFAULT_PAGECACHE,
        startup_timeout: float = 180.0,
        jvm_options: Sequence[str] = (),
        build: LauncherBuild | None = None,
        log_path: Path | str | None = None,
    ) -> None:
        if not password:
            raise ValueError("password must be non-empty")
        self.password = password
        self.user = "neo4j"
        self.host = host
        self.heap = heap
        self.pagecache = pagecache
        self.startup_timeout = float(startup_timeout)
        self.jvm_options = tuple(jvm_options)
        self._requested_port = port
        self._port: int | None = port
        self._given_data_dir = Path(data_dir).absolute() if data_dir is not None else None
        self._data_dir: Path | None = self._given_data_dir
        self._owns_data_dir = False
        self._given_log_path = Path(log_path).absolute() if log_path is not None else None
        self._log_path: Path | None = self._given_log_path
        self._build = build
        self._proc: subprocess.Popen[bytes] | None = None
        self._stdout_thread: threading.Thread | None = None
        self.startup_seconds: float | None = None
        """Wall time of the last successful :meth:`start` (JVM spawn to Bolt verified)."""

    # -- properties ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise Neo4jLauncherError("Neo4jServer has no port yet: call start() first")
        return self._port

    @property
    def uri(self) -> str:
        return f"bolt://{self.host}:{self.port}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise Neo4jLauncherError("Neo4jServer has no data directory yet: call start() first")
        return self._data_dir

    @property
    def log_path(self) -> Path:
        if self._log_path is None:
            raise Neo4jLauncherError("Neo4jServer has no log file yet: call start() first")
        return self._log_path

    @property
    def debug_log_path(self) -> Path:
        return self.data_dir / "logs" / "debug.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Neo4jServer {self._port and self.uri} {state} data_dir={self._data_dir}>"

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> "Neo4jServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "Neo4jServer":
        """Start the server and return once a driver can connect; no-op if already running."""
        if self.running:
            return self
        if self._proc is not None:  # crashed or killed earlier: reap it
            self._reap()
        build = self._build or build_launcher()
        self._build = build

        fresh_temp_dir = self._data_dir is None
        if fresh_temp_dir:
            self._data_dir = Path(tempfile.mkdtemp(prefix="kgmm-neo4j-"))
            self._owns_data_dir = True
        assert self._data_dir is not None
        self._data_dir.mkdir(parents=True, exist_ok=True)
        if self._log_path is None:
            # Beside a temporary data dir (so it can outlive a failed start), else inside.
            if self._owns_data_dir:
                self._log_path = self._data_dir.with_name(self._data_dir.name + ".log")
            else:
                self._log_path = self._data_dir / "launcher.log"
        self._log_path.parent.mkdir(parents=True, exist_ok=True)

        try:
            # An automatically chosen port can be grabbed by someone else between choosing
            # and binding; retry with a fresh one in that case.
            attempts = 3 if self._requested_port is None else 1
            for attempt in range(attempts):
                if self._requested_port is None and (self._port is None or attempt > 0):
                    self._port = free_port(self.host)
                try:
                    self._spawn_and_wait(build)
                    _LIVE_SERVERS.add(self)
                    return self
                except _PortInUse:
                    if attempt + 1 >= attempts:
                        raise
            raise AssertionError("unreachable")
        except BaseException:
            if fresh_temp_dir:
                # Nothing worth keeping but the log, which the error message points to.
                self._discard_temp_data(keep_log=True)
            raise

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the server down cleanly (SIGTERM, SIGKILL after ``timeout`` seconds) and delete
        the data directory and log if they were temporary ones.  Safe to call more than once."""
        try:
            self._terminate(timeout)
        finally:
            _LIVE_SERVERS.discard(self)
            self._discard_temp_data(keep_log=False)

    def _discard_temp_data(self, keep_log: bool) -> None:
        if not self._owns_data_dir or self._data_dir is None:
            return
        shutil.rmtree(self._data_dir, ignore_errors=True)
        self._data_dir = None
        self._owns_data_dir = False
        if self._given_log_path is None:
            if not keep_log and self._log_path is not None:
                try:
                    self._log_path.unlink()
                except OSError:
                    pass
            self._log_path = None
        if self._requested_port is None:
            self._port = None

    def kill(self) -> None:
        """SIGKILL the JVM (simulates a crash).  Keeps the data directory and port, so
        :meth:`restart` (or :meth:`start`) brings the same database back."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        self._reap()

    def restart(self, timeout: float = 30.0) -> "Neo4jServer":
        """Stop the server if it is running (cleanly) and start it again on the same port and
        data directory."""
        if self.running:
            self._terminate(timeout)
        elif self._proc is not None:
            self._reap()
        return self.start()

    def driver(self, **config: Any):  # -> neo4j.Driver
        """A new ``neo4j`` driver for this server (the caller closes it)."""
        import neo4j

        return neo4j.GraphDatabase.driver(self.uri, auth=self.auth, **config)

    # -- internals -----------------------------------------------------------------------------

    def _spawn_and_wait(self, build: LauncherBuild) -> None:
        assert self._data_dir is not None and self._log_path is not None
        port = self.port
        cmd = build.command(
            self._data_dir,
            port,
            heap=self.heap,
            pagecache=self.pagecache,
            host=self.host,
            jvm_options=self.jvm_options,
        )
        log_offset = self._log_path.stat().st_size if self._log_path.exists() else 0
        with open(self._log_path, "ab") as log:
            log.write(f"--- kgmm: starting Neo4j on {self.host}:{port} ({time.ctime()})\n".encode())
            log.flush()
            started = time.monotonic()
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=build.environment(self.password),
                    cwd=self._data_dir,
                    start_new_session=True,  # Ctrl-C in the terminal goes to Python only
                )
            except OSError as exc:
                raise Neo4jLauncherError(f"cannot run {build.java}: {exc}") from exc
        self._proc = proc
        lines: "queue.Queue[str | None]" = queue.Queue()
        self._stdout_thread = threading.Thread(
            target=_pump_stdout, args=(proc.stdout, lines), name=f"neo4j-stdout-{port}", daemon=True
        )
        self._stdout_thread.start()

        deadline = started + self.startup_timeout
        try:
            self._await_ready_line(proc, lines, deadline, log_offset)
            self._await_bolt(deadline, log_offset)
        except BaseException:
            self._terminate(timeout=10)
            raise
        self.startup_seconds = time.monotonic() - started

    def _await_ready_line(
        self,
        proc: subprocess.Popen[bytes],
        lines: "queue.Queue[str | None]",
        deadline: float,
        log_offset: int,
    ) -> None:
        exited_at: float | None = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._startup_error(
                    f"Neo4j did not report ready within {self.startup_timeout:.0f}s", log_offset
                )
            try:
                line = lines.get(timeout=min(0.5, remaining))
            except queue.Empty:
                # The pump thread reports EOF (None) once the process is gone; this is only a
                # guard against a stdout pipe kept open by something else.
                if proc.poll() is not None:
                    exited_at = exited_at or time.monotonic()
                    if time.monotonic() - exited_at > 5:
                        line = None
                    else:
                        continue
                else:
                    continue
            if line is None:  # stdout closed: the process is exiting
                try:
                    proc.wait(timeout=max(1.0, min(30.0, deadline - time.monotonic())))
                except subprocess.TimeoutExpired:
                    pass
                raise self._startup_error(
                    f"Neo4j launcher exited with status {proc.poll()} during startup", log_offset
                )
            if line.startswith(READY_MARKER):
                return

    def _await_bolt(self, deadline: float, log_offset: int) -> None:
        import neo4j
        from neo4j.exceptions import AuthError, DriverError, Neo4jError

        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise self._startup_error("Neo4j launcher exited right after reporting ready", log_offset)
            try:
                with neo4j.GraphDatabase.driver(
                    self.uri, auth=self.auth, connection_timeout=5.0
                ) as drv:
                    drv.verify_connectivity()
                return
            except AuthError as exc:
                raise self._startup_error(
                    f"Neo4j rejected the configured password for user {self.user!r}: {exc}",
                    log_offset,
                ) from exc
            except (DriverError, Neo4jError, OSError) as exc:
                last = exc
                time.sleep(0.2)
        raise self._startup_error(
            f"Bolt at {self.uri} not reachable within {self.startup_timeout:.0f}s: {last}",
            log_offset,
        )

    def _startup_error(self, summary: str, log_offset: int) -> Exception:
        log_text = ""
        if self._log_path is not None:
            try:
                with open(self._log_path, "rb") as fh:
                    fh.seek(log_offset)
                    log_text = fh.read().decode("utf-8", "replace")
            except OSError:
                pass
        failed = [
            ln[len(FAILED_MARKER):].strip()
            for ln in log_text.splitlines()
            if ln.startswith(FAILED_MARKER)
        ]
        tail = "\n".join(log_text.splitlines()[-30:])[-6000:]
        reason = f": {failed[-1]}" if failed else ""
        message = f"{summary}{reason} (log: {self._log_path})"
        details = f"--- last lines of {self._log_path} ---\n{tail}" if tail else ""
        if failed and re.search(r"Address already in use|cannot bind Bolt port", failed[-1]):
            return _PortInUse(message, details)
        return Neo4jLauncherError(message, details)

    def _terminate(self, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            # Closing stdin and SIGTERM both make the launcher shut Neo4j down cleanly.
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
            try:
                proc.send_signal(signal.SIGTERM)
            except OSError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._reap()

    def _reap(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILLed processes exit
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if self._stdout_thread is not None:
            self._stdout_thread.join(timeout=5)
            self._stdout_thread = None
        self._proc = None


class _PortInUse(Neo4jLauncherError):
    pass


def _pump_stdout(stream: IO[bytes] | None, lines: "queue.Queue[str | None]") -> None:
    """Forward the child's stdout lines (only the READY line, normally) until EOF."""
    if stream is None:
        lines.put(None)
        return
    try:
        for raw in iter(stream.readline, b""):
            lines.put(raw.decode("utf-8", "replace").strip())
    except (OSError, ValueError):
        pass
    finally:
        lines.put(None)
