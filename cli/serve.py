"""`kgmm serve`: the review web page over a store (any backend)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .errors import fail, guarded
from .options import DEFAULT_STORE_VALUE, DatabaseOption, PasswordOption, StoreOption, UserOption, store_spec
from .render import say


@guarded
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    token: Annotated[Optional[str], typer.Option("--token", envvar="KGMM_SERVE_TOKEN", help="Required to listen beyond loopback: visitors open the page once with ?token=... (prefer the variable).", show_default=False)] = None,
    reviewer: Annotated[Optional[str], typer.Option("--reviewer", envvar="KGMM_REVIEWER", help="Name recorded with each decision (default: the login name).", show_default=False)] = None,
    images: Annotated[Optional[str], typer.Option("--images", help="Folder the product photos may be served from (default: the catalog's folder of the last build).", show_default=False)] = None,
    store: StoreOption = DEFAULT_STORE_VALUE,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
) -> None:
    """Review proposals and suspect values in a web page: photo, values side by side, evidence, accept / reject."""
    from kgmm.review import reviewer_name

    try:
        from kgmm.serve import UnsafeBindError, check_bind, create_app, run
    except ImportError as err:
        raise fail(f"kgmm serve needs the web extras ({err.name} is missing): pip install 'kgmm[serve]'") from None

    try:
        check_bind(host, token)
    except UnsafeBindError as err:
        raise fail(str(err)) from None
    with store_spec(store, user, password, database).open() as graph:
        app = create_app(graph, reviewer=reviewer_name(reviewer), token=token, image_folder=images)
        shown = "localhost" if host in ("127.0.0.1", "::1") else host
        say(f"reviewing {store} at http://{shown}:{port}/ (Ctrl-C to stop)", stderr=True)
        run(app, host, port)
