"""An aiohttp app served from a daemon thread with its own event loop.

Private to the package: the built-in site (``stress.site.SiteServer``) and
the dashboard (``report.DashboardServer``) are both one of these. Access
logging is off and aiohttp's ``AppRunner`` and ``TCPSite`` are used directly,
so nothing prints behind the caller's back. See ARCHITECTURE.md, "The parts".
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading

from aiohttp import web

__all__ = ["ThreadedApp", "base_url", "is_loopback"]

log = logging.getLogger(__name__)

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 30.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, ``127.0.0.1``, ``::1``...)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(host: str, port: int) -> str:
    """``http://host:port`` (an IPv6 host in brackets), no trailing slash."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class ThreadedApp:
    """``app`` served on ``host:port`` from a daemon thread; ``start`` and ``close``
    are idempotent, and a closed one cannot be started again.

    Args:
        app: what to serve.
        host: the address to bind.
        port: the port; 0 picks a free one (``port`` is the real one once started).
        name: the thread's name, and what messages call it.
        shutdown_grace: seconds open keep-alive connections (a browser) may hold up
            the shutdown (aiohttp's default is 60).
    """

    def __init__(
        self, app: web.Application, host: str, port: int, *, name: str, shutdown_grace: float
    ) -> None:
        self.app = app
        self.host = host
        self._requested_port = port
        self._name = name
        self._grace = shutdown_grace
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closed = False

    @property
    def port(self) -> int:
        """The bound port; the real one when port 0 was asked.

        Raises:
            RuntimeError: it has not been started.
        """
        if self._port is None:
            raise RuntimeError(f"{self._name} is not started")
        return self._port

    def start(self) -> None:
        """Start serving; returns once the socket listens.

        Raises:
            RuntimeError: it was closed.
            OSError: the address cannot be bound.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._name} is closed and cannot be started again")
            if self._thread is not None:
                return
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=_run_loop, args=(loop,), name=self._name, daemon=True)
            thread.start()
            future = asyncio.run_coroutine_threadsafe(self._start(), loop)
            try:
                self._runner, self._port = future.result(_START_TIMEOUT)
            except BaseException:
                _stop_loop(loop, thread)
                raise
            self._loop, self._thread = loop, thread

    async def _start(self) -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=self._grace)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._requested_port).start()
        except BaseException:
            await runner.cleanup()
            raise
        return runner, int(runner.addresses[0][1])

    def close(self) -> None:
        """Stop serving and join the thread; safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread, runner = self._loop, self._thread, self._runner
            self._loop = self._thread = self._runner = None
        if loop is None or thread is None:
            return
        if runner is not None:
            future = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
            try:
                future.result(_STOP_TIMEOUT)
            except Exception:
                log.warning("%s did not shut down cleanly", self._name, exc_info=True)
        _stop_loop(loop, thread)


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join(_STOP_TIMEOUT)
    if not thread.is_alive():
        loop.close()
