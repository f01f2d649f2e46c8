"""The review web page: a Starlette app over the store contract, plain HTML forms, Jinja2 templates.

Everything it knows it reads through :class:`graph_store.GraphStore` (queue, product, decisions),
so it serves a Neo4j store exactly as an SQLite file. Store calls are serialised by one lock: the
page is for a handful of analysts, and one connection used by one request at a time is what both
backends are built for. Security (loopback, token, cross-site forms, image folder) is
:mod:`kgmm.serve.security`'s.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from graph_store import ContractError, GraphStore

from ..review import decide, review_queue
from ..review.evidence import SimilarProducts
from .pages import filters_from, product_context, queue_context
from .security import TOKEN_COOKIE, Guard, image_inside

TEMPLATES = Path(__file__).parent / "templates"
VERDICTS = ("accept", "reject", "keep")


@dataclass
class ReviewSite:
    """What the app serves: one open store, who decides, where the images may come from."""

    store: GraphStore
    reviewer: str
    image_folder: str | None
    guard: Guard = field(default_factory=Guard)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _similar: SimilarProducts | None = None

    def similar(self) -> SimilarProducts:
        """The TF-IDF index, built on first use and told about new facts after each decision."""
        if self._similar is None:
            self._similar = SimilarProducts(self.store)
        return self._similar

    def decided(self) -> None:
        if self._similar is not None:
            self._similar.refresh_facts(self.store)


def create_app(store: GraphStore, *, reviewer: str, token: str | None = None, image_folder: str | None = None) -> Starlette:
    """The review app over an open ``store``; ``image_folder`` defaults to the catalog's folder of the last build."""
    folder = image_folder or (store.last_build() or {}).get("catalog_folder")
    site = ReviewSite(store, reviewer, folder, Guard(token))
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)

    def render(name: str, request: Request, context: dict, status: int = 200) -> HTMLResponse:
        page = env.get_template(name).render(request=request, csrf=site.guard.csrf_token(), reviewer=site.reviewer, **context)
        return HTMLResponse(page, status_code=status, headers=_HEADERS)

    def queue(request: Request) -> Response:
        filters, source, problems = filters_from(request.query_params)
        with site.lock:
            context = queue_context(site.store, filters, source)
        return render("queue.html", request, {**context, "problems": problems})

    def product(request: Request) -> Response:
        pid = request.path_params["pid"]
        filters, source, problems = filters_from(request.query_params)
        with site.lock:
            context = product_context(site.store, site.similar(), pid, filters, source)
        if context is None:
            return render("missing.html", request, {"pid": pid}, status=404)
        return render("product.html", request, {**context, "problems": problems, "said": request.query_params.get("said")})

    async def post(request: Request) -> Response:
        form = await request.form()
        if not site.guard.form_ok(form.get("csrf")):
            return PlainTextResponse("form token missing or wrong: reload the page", status_code=403)
        return await run_in_threadpool(act, request, dict(form))

    def act(request: Request, form: dict) -> Response:
        pid, attribute, value = (str(form.get(k, "")) for k in ("product_id", "attribute", "value"))
        back = str(form.get("back", ""))
        with site.lock:
            try:
                if request.url.path == "/undo":
                    if pid:
                        undone = site.store.undo_review(pid, attribute, value)
                    else:
                        latest = site.store.reviews()
                        undone = site.store.undo_review(*latest[-1].key) if latest else None
                    said = f"undid {undone.decision} of {undone.attribute}={undone.value}" if undone else "nothing to undo"
                    pid = pid or (undone.product_id if undone else "")
                else:
                    verdict = str(form.get("verdict", ""))
                    if verdict not in VERDICTS:
                        return PlainTextResponse(f"unknown verdict {verdict!r}", status_code=400)
                    done = decide(site.store, (pid, attribute, value), verdict, site.reviewer, str(form.get("note") or "") or None)
                    said = f"{done.decision}: {attribute}={value}"
            except ContractError as err:
                return PlainTextResponse(str(err), status_code=409)
            site.decided()
            target = _next_target(site.store, pid, back)
        query = back + ("&" if back else "") + urlencode({"said": said})
        return RedirectResponse(f"{target}?{query}" if target else f"/?{query}", status_code=303)

    def image(request: Request) -> Response:
        pid = request.path_params["pid"]
        with site.lock:
            view = site.store.get_product(pid)
        path = image_inside(view.product.image if view and view.product.image_status == "ok" else None, site.image_folder)
        if path is None:
            return PlainTextResponse("no such image", status_code=404)
        return FileResponse(path, headers={"Cache-Control": "private, max-age=3600", **_HEADERS})

    routes = [
        Route("/", queue),
        Route("/product/{pid:path}", product),
        Route("/image/{pid:path}", image),
        Route("/decide", post, methods=["POST"]),
        Route("/undo", post, methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_GuardMiddleware, guard=site.guard)])


def _next_target(store: GraphStore, pid: str, back: str) -> str:
    """Stay on the product while it has open proposals in the filters, else go to the next one in the queue."""
    filters, source, _ = filters_from(QueryParams(back))
    items = review_queue(store, filters, source)
    ids = [item.product.id for item in items]
    if pid in ids:
        return f"/product/{quote(pid)}"
    return f"/product/{quote(ids[0])}" if ids else ""


_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class _GuardMiddleware:
    """Host and token checks on every request, Origin checks on every POST (pure ASGI)."""

    def __init__(self, app, guard: Guard) -> None:
        self.app, self.guard = app, guard

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        headers = request.headers
        if not self.guard.host_ok(headers.get("host")):
            await PlainTextResponse("unknown host name: open the page at 127.0.0.1 or localhost", status_code=421)(scope, receive, send)
            return
        if self.guard.token is not None:
            given = request.query_params.get("token")
            if given is not None and self.guard.token_ok(given):
                response = RedirectResponse(request.url.path, status_code=303)
                response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict")
                await response(scope, receive, send)
                return
            bearer = headers.get("authorization", "")
            carried = request.cookies.get(TOKEN_COOKIE) or (bearer[7:] if bearer.lower().startswith("bearer ") else None)
            if not self.guard.token_ok(carried):
                await PlainTextResponse("token required: open the page with ?token=...", status_code=401)(scope, receive, send)
                return
        if request.method not in ("GET", "HEAD") and not self.guard.same_origin(
            headers.get("origin"), headers.get("referer"), headers.get("host")
        ):
            await PlainTextResponse("cross-site request refused", status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

