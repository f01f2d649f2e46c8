"""Run an in-process Neo4j 5.26 server in the foreground: ``python -m tests.neo4j_server``.

Prints the Bolt URI and credentials, then serves until Ctrl-C (or SIGTERM).  Without
``--data-dir`` the database lives in a temporary directory that is deleted on exit.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from .launcher import DEFAULT_HEAP, DEFAULT_PAGECACHE, PASSWORD_ENV, Neo4jLauncherError, _tail, build_launcher
from .server import Neo4jServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.neo4j_server",
        description="Run a Neo4j 5.26 Community server (Bolt on loopback) until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=None, help="Bolt port (default: a free one)")
    parser.add_argument(
        "--password",
        default=None,
        help=f"password of user 'neo4j' (default: ${PASSWORD_ENV} or 'password')",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="Neo4j home/data directory, kept on exit (default: a temporary one, deleted on exit)",
    )
    parser.add_argument("--heap", default=DEFAULT_HEAP, help=f"JVM -Xmx (default {DEFAULT_HEAP})")
    parser.add_argument(
        "--pagecache", default=DEFAULT_PAGECACHE, help=f"page cache size (default {DEFAULT_PAGECACHE})"
    )
    parser.add_argument(
        "--startup-timeout", type=float, default=180.0, help="seconds to wait for Bolt (default 180)"
    )
    parser.add_argument(
        "--build-only", action="store_true", help="only build/cache the launcher, then exit"
    )
    args = parser.parse_args(argv)

    try:
        if args.build_only:
            build = build_launcher()
            print(f"launcher ready: {build.directory} (Neo4j {build.neo4j_version})", flush=True)
            return 0
        password = args.password or os.environ.get(PASSWORD_ENV) or "password"
        server = Neo4jServer(
            password=password,
            port=args.port,
            data_dir=args.data_dir,
            heap=args.heap,
            pagecache=args.pagecache,
            startup_timeout=args.startup_timeout,
        )
        print("starting Neo4j (the first run downloads Neo4j's jars with Maven) ...", flush=True)
        server.start()
    except Neo4jLauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()
    # Both stop the server; installed explicitly because a shell may start background jobs
    # with SIGINT ignored, and then Python would never raise KeyboardInterrupt.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        print(f"Neo4j is ready at {server.uri}", flush=True)
        print(f"  user:     {server.user}", flush=True)
        if args.password is None and os.environ.get(PASSWORD_ENV):
            print(f"  password: (from ${PASSWORD_ENV})", flush=True)
        else:
            print(f"  password: {server.password}", flush=True)
        print(f"  data dir: {server.data_dir}", flush=True)
        print(f"  log:      {server.log_path}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.is_set():
            if not server.running:
                print(
                    "error: the Neo4j process exited unexpectedly; last lines of its log:\n"
                    + _tail(server.log_path),
                    file=sys.stderr,
                )
                return 1
            stop.wait(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping Neo4j ...", flush=True)
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
