"""Run a built launcher: :class:`Neo4jServer` starts the JVM on a free loopback port, waits for
Bolt, and stops, kills or restarts it; servers left running are stopped at interpreter exit."""

from __future__ import annotations

import atexit
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

from .launcher import (
    DEFAULT_HEAP,
    DEFAULT_PAGECACHE,
    DEFAULT_PASSWORD,
    FAILED_MARKER,
    READY_MARKER,
    LauncherBuild,
    Neo4jLauncherError,
    build_launcher,
)

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
