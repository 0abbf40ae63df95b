"""Running the target site: in a background thread (tests, the stress tester) or in the foreground.

Both bind loopback addresses only (the site is never reachable from another
machine), keep access logging off, and use aiohttp's ``AppRunner`` and
``TCPSite`` directly so nothing prints behind the caller's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import threading
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from enduro.stress.site.app import SiteConfig, make_app

__all__ = ["SiteServer", "serve_forever"]

logger = logging.getLogger(__name__)

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 30.0
# Open keep-alive connections (a browser) must not hold up shutdown for aiohttp's default 60 s.
_SHUTDOWN_GRACE = 2.0
_STOP_POLL = 0.1


def _check_host(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the target site binds loopback addresses only, not {host!r}")


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_GRACE)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    return runner, int(bound)


class SiteServer:
    """The target site served from a daemon thread with its own event loop.

    Use as a context manager, or call ``start()`` and ``close()``; both are
    idempotent, and a closed server cannot be started again.

    Args:
        config: what the site serves.
        host: a loopback address to bind.
        port: the port to bind; 0 picks a free one (see ``port`` after start).

    Raises:
        ValueError: if ``host`` is not a loopback address.
    """

    def __init__(self, config: SiteConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        _check_host(host)
        self._config = config
        self._host = host
        self._requested_port = port
        self._app = make_app(config)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closed = False

    @property
    def app(self) -> web.Application:
        """The aiohttp application (its sessions and request counts are readable)."""
        return self._app

    @property
    def config(self) -> SiteConfig:
        """The configuration the site serves."""
        return self._config

    @property
    def port(self) -> int:
        """The bound port; the real one when port 0 was asked.

        Raises:
            RuntimeError: if the server has not been started.
        """
        if self._port is None:
            raise RuntimeError("SiteServer is not started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8700`` (no trailing slash)."""
        return _url(self._host, self.port)

    def start(self) -> SiteServer:
        """Start serving and return once the socket is listening.

        Raises:
            RuntimeError: if the server was closed.
            OSError: if the address cannot be bound.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("SiteServer is closed and cannot be started again")
            if self._thread is not None:
                return self
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=self._run_loop, args=(loop,), name="enduro-site", daemon=True
            )
            thread.start()
            future = asyncio.run_coroutine_threadsafe(
                _start(self._app, self._host, self._requested_port), loop
            )
            try:
                self._runner, self._port = future.result(_START_TIMEOUT)
            except BaseException:
                self._stop_loop(loop, thread)
                raise
            self._loop, self._thread = loop, thread
        logger.info("target site listening on %s", self.url)
        return self

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
                logger.warning("target site did not shut down cleanly", exc_info=True)
        self._stop_loop(loop, thread)
        logger.info("target site stopped")

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    @staticmethod
    def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_STOP_TIMEOUT)
        if not thread.is_alive():
            loop.close()


def serve_forever(
    config: SiteConfig,
    host: str = "127.0.0.1",
    port: int = 8700,
    on_ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve the site in the foreground until SIGINT, SIGTERM or ``stop`` is set.

    Args:
        config: what the site serves.
        host: a loopback address to bind.
        port: the port to bind; 0 picks a free one.
        on_ready: called once with the base URL (with the real port) when listening.
        stop: set it from another thread to shut the server down.

    Raises:
        ValueError: if ``host`` is not a loopback address.
        OSError: if the address cannot be bound.
    """
    _check_host(host)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(make_app(config), host, port, on_ready, stop))


async def _serve(
    app: web.Application,
    host: str,
    port: int,
    on_ready: Callable[[str], None] | None,
    stop: threading.Event | None,
) -> None:
    runner, bound = await _start(app, host, port)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    handled: list[signal.Signals] = []
    # Signal handlers can only be installed from the main thread (tests run this in another).
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
            handled.append(sig)
    try:
        url = _url(host, bound)
        logger.info("target site listening on %s", url)
        if on_ready is not None:
            on_ready(url)
        while not stopping.is_set() and not (stop is not None and stop.is_set()):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), _STOP_POLL)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        logger.info("target site stopped")
