"""The live dashboard: one self-contained page, ``/metrics``, ``/api/status``.

An aiohttp app over a :class:`~enduro.report.LiveView` of a store. The page
(``static/dashboard.html`` with its script and the vendored uPlot; nothing is
fetched from elsewhere) polls ``/api/live`` about once a second. Every route
reads; none changes the store, which is opened read only. It binds 127.0.0.1
unless told otherwise, and another address needs a token, which every request
must then carry (``Authorization: Bearer T``, or ``?token=T``, which the page
turns into a same-site cookie for its own requests). Scraped text and
messages reach the page as JSON and are shown as text, never as markup; a
flight record's HTML is served sandboxed (no script runs, no origin of ours).
See ARCHITECTURE.md, "The dashboard".
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from types import TracebackType
from typing import Any

from aiohttp import web

from enduro._aiothread import ThreadedApp, base_url, is_loopback
from enduro.errors import UsageError
from enduro.report._live import LiveView
from enduro.report._metrics import CONTENT_TYPE, render_metrics
from enduro.report._status import status_report

__all__ = ["DEFAULT_PORT", "DashboardServer", "check_bind", "make_dashboard", "new_token"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
_STATUS_SECONDS = 2.0  # /api/status is read again at most this often
_STATIC = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain",
}
_FLIGHT_TYPES = {
    ".png": "image/png",
    ".html": "text/html",
    ".json": "text/plain",
}
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_VIEW = web.AppKey("view", LiveView)
_COOKIE = "enduro_token"


def new_token() -> str:
    """A fresh random token (``--token auto``)."""
    return secrets.token_urlsafe(18)


def check_bind(host: str, token: str | None) -> None:
    """Refuse to bind an address other than loopback without a token.

    Raises:
        UsageError: ``host`` is not a loopback address and no token was given.
    """
    if not token and not is_loopback(host):
        raise UsageError(
            f"the dashboard would be open to the network on {host} without a token",
            "give --token T (or --token auto), or bind 127.0.0.1",
        )


def make_dashboard(view: LiveView, token: str | None = None) -> web.Application:
    """The dashboard's aiohttp app over ``view`` (every request needs ``token``, if given)."""
    app = web.Application(middlewares=[_guard(token)])
    app[_VIEW] = view
    status: dict[str, Any] = {"at": -1e9, "body": b""}
    status_lock = asyncio.Lock()

    async def page(_request: web.Request) -> web.Response:
        return web.Response(
            body=_asset("dashboard.html"),
            content_type="text/html",
            charset="utf-8",
            headers={"Content-Security-Policy": _PAGE_POLICY},
        )

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=_asset(name), content_type=_STATIC[name])

    async def live(_request: web.Request) -> web.Response:
        snapshot = await asyncio.get_running_loop().run_in_executor(None, view.snapshot)
        return _json(snapshot)

    async def api_status(_request: web.Request) -> web.Response:
        async with status_lock:
            if time.monotonic() - status["at"] > _STATUS_SECONDS:
                report = await asyncio.get_running_loop().run_in_executor(None, _status, view)
                status["body"], status["at"] = _dumps(report), time.monotonic()
        return web.Response(body=status["body"], content_type="application/json")

    async def metrics(_request: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(None, render_metrics, view)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def flight(request: web.Request) -> web.FileResponse:
        store = view.store()
        name = request.match_info["name"]
        if store is None or "/" in name or name.startswith("."):
            raise web.HTTPNotFound()
        root = store.flight_dir.resolve()
        path = (root / name).resolve()
        kind = next((t for end, t in _FLIGHT_TYPES.items() if name.endswith(end)), None)
        if kind is None or path.parent != root or not path.is_file():
            raise web.HTTPNotFound()
        headers = {"Content-Type": kind, "X-Content-Type-Options": "nosniff"}
        if kind == "text/html":  # what the scraped site showed: shown, never run
            headers["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src data:"
        return web.FileResponse(path, headers=headers)

    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/live", live)
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/flight/{name}", flight)
    return app


def _status(view: LiveView) -> dict[str, Any]:
    view.refresh()
    store = view.store()
    if store is None:
        return {"store": "", "waiting": view.snapshot()["waiting"], "jobs": {}}
    return status_report(store)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def _json(value: Any) -> web.Response:
    return web.Response(body=_dumps(value), content_type="application/json")


def _asset(name: str) -> bytes:
    return resources.files("enduro.report").joinpath("static", name).read_bytes()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guard(token: str | None) -> Any:
    """Every answer uncached and unsniffed; with a token, none without it."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None and not _carries(request, token):
            raise web.HTTPUnauthorized(
                text="this dashboard needs its token: ?token=T or Authorization: Bearer T",
                headers={"WWW-Authenticate": 'Bearer realm="enduro"'},
            )
        response = await handler(request)
        if token is not None and request.query.get("token"):
            # the page's own requests (its script, its data) carry it from here on
            response.set_cookie(
                _COOKIE, token, httponly=True, samesite="Strict", path="/", max_age=None
            )
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return guard


def _carries(request: web.Request, token: str) -> bool:
    given = request.query.get("token") or request.cookies.get(_COOKIE, "")
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        given = header.removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), token.encode())


class DashboardServer:
    """The dashboard served from a daemon thread with its own event loop.

    Use as a context manager, or ``start()`` and ``close()`` (both idempotent).

    Args:
        view: the store to show.
        host: the address to bind (not loopback: a token is required).
        port: the port; 0 picks a free one (see ``url`` after start).
        token: required on every request, if given.

    Raises:
        UsageError: a non-loopback ``host`` without a token.
    """

    def __init__(
        self,
        view: LiveView,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        token: str | None = None,
    ) -> None:
        check_bind(host, token)
        self.view = view
        self._token = token
        self._asked = f"{host}:{port}"
        self._served = ThreadedApp(
            make_dashboard(view, token), host, port, name="enduro-dashboard", shutdown_grace=1.0
        )

    @property
    def url(self) -> str:
        """The page's address (with its token, if there is one)."""
        url = base_url(self._served.host, self._served.port) + "/"
        return f"{url}?token={self._token}" if self._token else url

    @property
    def port(self) -> int:
        """The bound port (the real one once started)."""
        return self._served.port

    def start(self) -> DashboardServer:
        """Start serving; returns once the socket listens.

        Raises:
            UsageError: the address can't be bound (in use, or not this host's).
        """
        try:
            self._served.start()
        except OSError as exc:
            raise UsageError(
                f"the dashboard can't listen on {self._asked}: {exc.strerror or exc}",
                "pick another port (--port, or 0 for any free one)",
            ) from exc
        log.info("dashboard on %s", self.url.split("?", 1)[0])
        return self

    def close(self) -> None:
        """Stop serving and let the store go; safe to call twice."""
        self._served.close()
        self.view.close()

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
