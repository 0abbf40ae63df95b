"""``enduro dashboard``, and the ``--dashboard [PORT]`` that ``run``, ``demo`` and
``stress`` take: thin commands over enduro.report's dashboard."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import click
from rich.console import Console

from enduro.cli._common import console, usage_errors
from enduro.report import DEFAULT_PORT, DashboardServer, LiveView, check_bind, new_token
from enduro.store import Store

__all__ = ["dashboard", "dashboard_option", "live_dashboard"]

dashboard_option = click.option(
    "--dashboard",
    "dashboard_port",
    type=click.IntRange(0, 65535),
    is_flag=False,
    flag_value=DEFAULT_PORT,
    default=None,
    help=f"Serve the live dashboard on 127.0.0.1 (port {DEFAULT_PORT}, or the one given; "
    "0: any free one) while the run goes on.",
)


@contextlib.contextmanager
def live_dashboard(
    open_store: Callable[[], Store], port: int | None, out: Console
) -> Iterator[DashboardServer | None]:
    """The dashboard over the store ``open_store`` opens (read only), on 127.0.0.1:``port``,
    while the block runs (nothing when ``port`` is None).

    Raises:
        UsageError: the port can't be bound.
    """
    if port is None:
        yield None
        return
    server = DashboardServer(LiveView(open_store), port=port).start()
    out.print(f"dashboard: {server.url}")
    try:
        yield server
    finally:
        server.close()


@click.command()
@click.argument("store_target", metavar="STORE")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="0: any free port.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--token",
    default=None,
    help="Required on every request (?token=T or Authorization: Bearer T); 'auto' makes one. "
    "Needed to bind an address other than loopback.",
)
@click.option(
    "--job", "job_name", default=None, help="The job to show (default: the latest run's)."
)
@usage_errors
def dashboard(
    store_target: str, port: int, host: str, token: str | None, job_name: str | None
) -> None:
    """Serve a live page of STORE's job (a path or postgresql:// URL), with /metrics and
    /api/status, until Ctrl-C. Read only: nothing it serves changes the store."""
    if token == "auto":
        token = new_token()
    check_bind(host, token)
    Store.open(store_target, read_only=True).close()  # refused now, in one line, if unusable
    view = LiveView.of(store_target, job=job_name)
    out = console()
    stop = threading.Event()
    with DashboardServer(view, host, port, token=token) as server:
        out.print(f"dashboard: {server.url}")
        out.print(f"metrics: {server.url.split('?', 1)[0]}metrics   (Ctrl-C stops)")
        previous = {
            sig: signal.signal(sig, _setter(stop)) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            while not stop.wait(1.0):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    out.print("dashboard stopped")


def _setter(stop: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    return handler
