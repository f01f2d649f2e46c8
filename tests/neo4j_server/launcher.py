"""Build the Neo4j launcher once: Neo4j's jars resolved by Maven, ``Neo4jLauncher.java`` compiled
with ``javac``, cached under ``~/.cache/kgmm/neo4j-launcher/<hash of pom.xml and the source>``.

:class:`LauncherBuild` is the result (classpath, the JVM command line); :mod:`.server` runs it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Sequence

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
