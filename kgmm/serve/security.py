"""What keeps the review page to its analyst: loopback or a token, same-origin forms, images in their folder.

* **Where it listens.** Loopback by default. Any other address serves a whole catalog and lets
  its visitors change it, so it is refused unless a token is set (``--token`` or
  ``$KGMM_SERVE_TOKEN``); with a token, every request must carry it (``?token=`` once, which sets a
  cookie, or ``Authorization: Bearer``).
* **DNS rebinding.** Without a token, a request must name a loopback ``Host``: a web page on an
  attacker's domain that re-points that domain to 127.0.0.1 sends its own host name and is refused.
* **Cross-site requests.** Every form carries a token derived from a secret made at start-up
  (:meth:`Guard.csrf_token`), which another site cannot read; a POST without it, or whose
  ``Origin`` (else ``Referer``) is another site, is refused.
* **Images.** Only files inside the catalog's folder are served (resolved, links followed), so
  neither a crafted image path in a catalog nor a link in the folder reaches other files.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

TOKEN_ENV = "KGMM_SERVE_TOKEN"
TOKEN_COOKIE = "kgmm_token"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


class UnsafeBindError(ValueError):
    """A non-loopback address was asked for without a token."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token.

    Raises:
        UnsafeBindError: ``host`` is not loopback and ``token`` is empty.
    """
    if not is_loopback(host) and not token:
        raise UnsafeBindError(
            f"--host {host} would let anyone who can reach this machine read and change the store; "
            f"set a token with --token or ${TOKEN_ENV} (then open the page once with ?token=...)"
        )


class Guard:
    """The checks of one running server (its secret lives as long as the process)."""

    def __init__(self, token: str | None = None, secret: bytes | None = None) -> None:
        self.token = token or None
        self._secret = secret or secrets.token_bytes(32)

    def csrf_token(self) -> str:
        """The value every form carries; another site cannot read it from the page."""
        return hmac.new(self._secret, b"kgmm-review-form", "sha256").hexdigest()

    def token_ok(self, given: str | None) -> bool:
        return self.token is None or (given is not None and hmac.compare_digest(given.encode(), self.token.encode()))

    def host_ok(self, host_header: str | None) -> bool:
        """Without a token only loopback host names are answered (DNS rebinding)."""
        if self.token is not None:
            return True
        if not host_header:
            return False
        name = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
        return name in LOOPBACK_NAMES or is_loopback(name)

    def same_origin(self, origin: str | None, referer: str | None, host_header: str | None) -> bool:
        """A POST comes from this server's own pages: its Origin (else Referer) names this host."""
        source = origin if origin and origin != "null" else referer
        if not source or not host_header:
            return False
        return urlsplit(source).netloc == host_header

    def form_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf_token().encode())


def image_inside(image: str | None, folder: str | os.PathLike[str] | None) -> Path | None:
    """``image`` as a resolved path when it is a file inside ``folder`` (links followed), else None."""
    if not image or not folder:
        return None
    try:
        root = Path(folder).resolve(strict=True)
        path = (root / image).resolve(strict=True)  # an absolute image stays absolute
    except (OSError, RuntimeError):
        return None
    if not path.is_file() or not path.is_relative_to(root):
        return None
    return path
