"""``kgmm serve``: the review web page (see :mod:`kgmm.serve.app`), safe by default (:mod:`kgmm.serve.security`)."""

from .app import ReviewSite, create_app
from .security import TOKEN_ENV, UnsafeBindError, check_bind, image_inside, is_loopback

__all__ = ["ReviewSite", "TOKEN_ENV", "UnsafeBindError", "check_bind", "create_app", "image_inside", "is_loopback", "run"]


def run(app, host: str, port: int) -> None:
    """Serve ``app`` with uvicorn until interrupted (imported here: only ``kgmm serve`` needs it)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False, proxy_headers=False)
