"""Running the target site: in a background thread (tests, the stress tester) or in the foreground.

Both bind loopback addresses only (the site is never reachable from another
machine), keep access logging off, and use aiohttp's ``AppRunner`` and
``TCPSite`` directly so nothing prints behind the caller's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from enduro._aiothread import ThreadedApp, base_url, is_loopback
from enduro.stress.site.app import SiteConfig, make_app

__all__ = ["SiteServer", "serve_forever"]

logger = logging.getLogger(__name__)

# Open keep-alive connections (a browser) must not hold up shutdown for aiohttp's default 60 s.
_SHUTDOWN_GRACE = 2.0
_STOP_POLL = 0.1


def _check_host(host: str) -> None:
    if not is_loopback(host):
        raise ValueError(f"the target site binds loopback addresses only, not {host!r}")


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
        self._served = ThreadedApp(
            make_app(config), host, port, name="enduro-site", shutdown_grace=_SHUTDOWN_GRACE
        )

    @property
    def app(self) -> web.Application:
        """The aiohttp application (its sessions and request counts are readable)."""
        return self._served.app

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
        return self._served.port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8700`` (no trailing slash)."""
        return base_url(self._served.host, self.port)

    def start(self) -> SiteServer:
        """Start serving and return once the socket is listening.

        Raises:
            RuntimeError: if the server was closed.
            OSError: if the address cannot be bound.
        """
        self._served.start()
        logger.info("target site listening on %s", self.url)
        return self

    def close(self) -> None:
        """Stop serving and join the thread; safe to call more than once."""
        self._served.close()

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


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
        url = base_url(host, bound)
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
