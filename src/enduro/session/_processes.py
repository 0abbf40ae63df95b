"""Killing what a session started, and what a dead run left behind.

chromedriver is started in a session of its own (``start_new_session``), so
it and every Chromium process it launches share one process group: one
``killpg`` removes them all, even after chromedriver itself is gone. Each
session also works in a directory named ``enduro-<run_id>-*`` that appears in
the command lines of chromedriver (``--log-path``) and Chromium
(``--user-data-dir``), so a process started in the instant before it could be
registered is still found.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import psutil

from enduro.store import ProcessRow, Store

__all__ = [
    "GRID_SESSION",
    "WORKDIR_PREFIX",
    "close_grid_session",
    "grid_request",
    "grid_session_address",
    "kill_group",
    "process_alive",
    "reap_dead_runs",
    "remove_workdir",
    "run_workdir_prefix",
    "shown_url",
    "split_credentials",
]

log = logging.getLogger(__name__)

WORKDIR_PREFIX = "enduro-"
GRID_SESSION = "grid_session"  # a registry row's kind for a session on a Selenium Grid


def split_credentials(url: str) -> tuple[str, str | None]:
    """A Grid URL without its ``user:password@`` part, and that part (None if none).

    The credentials of a Grid behind basic auth are sent as a header and never
    written anywhere: not in the store, the logs or a report.
    """
    parts = urllib.parse.urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), urllib.parse.unquote(userinfo)


def shown_url(url: str) -> str:
    """A Grid URL as it may be shown: a password replaced by ``***``."""
    plain, credentials = split_credentials(url)
    if credentials is None:
        return url
    user = credentials.partition(":")[0]
    scheme, rest = plain.split("://", 1) if "://" in plain else ("http", plain)
    return f"{scheme}://{urllib.parse.quote(user)}:***@{rest}"


def grid_request(
    url: str, method: str = "GET", timeout: float = 10.0, credentials_from: str | None = None
) -> bytes:
    """One request to a Grid, its credentials (in ``url`` or, for an address
    kept without them, in ``credentials_from`` when that is the same Grid) sent
    as basic auth.

    Raises:
        OSError: the Grid could not be reached or answered an error.
    """
    plain, credentials = split_credentials(url)
    if credentials is None and credentials_from is not None:
        base, theirs = split_credentials(credentials_from)
        if plain.startswith(base.rstrip("/") + "/"):
            credentials = theirs
    request = urllib.request.Request(plain, method=method)
    if credentials is not None:
        token = base64.b64encode(credentials.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        body: bytes = answer.read()
    return body


def grid_session_address(grid_url: str, session_id: str) -> str:
    """What the registry keeps of a Grid session (in the row's ``workdir``): its
    address, without the Grid's credentials."""
    return f"{split_credentials(grid_url)[0].rstrip('/')}/session/{session_id}"


def close_grid_session(address: str, timeout: float = 10.0, grid_url: str | None = None) -> bool:
    """Ask the Grid to delete a session (DELETE /session/<id>), with the
    credentials of ``grid_url`` if the session is on that Grid; False if it
    could not be reached or knew no such session."""
    try:
        grid_request(address, "DELETE", timeout, credentials_from=grid_url)
        return True
    except OSError:
        return False


def run_workdir_prefix(run_id: str) -> str:
    """The name every session directory of this run starts with."""
    return f"{WORKDIR_PREFIX}{run_id}-"


def process_alive(pid: int, create_time: float) -> bool:
    """Whether the process ``pid`` that started at ``create_time`` still runs."""
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - create_time) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def kill_group(pgid: int | None, marker: str | None = None) -> int:
    """SIGKILL a process group and any process whose command line has ``marker``.

    Returns:
        How many processes were signalled.
    """
    killed = 0
    victims: list[psutil.Process] = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == os.getpid():
            continue
        try:
            in_group = pgid is not None and os.getpgid(proc.pid) == pgid
            cmdline = " ".join(proc.info.get("cmdline") or [])
        except (ProcessLookupError, psutil.Error):
            continue
        if in_group or (marker and marker in cmdline):
            victims.append(proc)
    for proc in victims:
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
            killed += 1
    # Wait for them to go (this also reaps our own children).
    psutil.wait_procs(victims, timeout=3)
    return killed


def remove_workdir(path: str | None) -> None:
    """Delete a session directory (profile, temp files, driver log)."""
    if path:
        shutil.rmtree(path, ignore_errors=True)


def _kill_registered(rows: Iterable[ProcessRow], run_id: str) -> int:
    killed = 0
    marker = run_workdir_prefix(run_id)
    rows = [row for row in rows if row.kind != GRID_SESSION]
    for pgid in {row.pgid for row in rows}:
        killed += kill_group(pgid, marker)
    killed += kill_group(None, os.path.join(tempfile.gettempdir(), marker))
    return killed


def reap_dead_runs(
    store: Store,
    stale_after: float,
    now: float,
    host: str | None = None,
    grid_url: str | None = None,
) -> list[str]:
    """Find runs that died without saying so; kill their browsers, free their pages.

    A run on this host (``host``, default this machine's name) is dead when its
    process is gone. A run on another host is dead when its heartbeat is older
    than ``stale_after`` seconds on the store's clock (``now``); its processes
    can't be reached from here, so they are left to their own host: the next
    run there kills what a dead run of its host left, whoever found it dead.
    When two runners find one run dead at once, one of them reports it. A dead
    run's Grid sessions are closed from any host (with ``grid_url``'s
    credentials, for a Grid behind basic auth).

    Returns:
        The run ids this call marked dead.
    """
    host = host or socket.gethostname()
    dead = []
    for run in store.running_runs():
        if run.host == host:
            if process_alive(run.pid, run.pid_create_time):
                continue
        elif now - run.heartbeat_at < stale_after:
            continue
        killed = (
            _clean_up(store, run.run_id, grid_url)
            if run.host == host
            else _close_remote(store, run.run_id, grid_url)
        )
        released = store.mark_run_dead(run.run_id, killed)
        if released is None:
            continue  # another runner found it dead first
        log.info(
            "run %s had died: killed %d leftover processes, released %d pages",
            run.run_id,
            killed,
            released,
        )
        dead.append(run.run_id)
    for run in store.runs(status="dead"):
        if run.host == host and store.open_processes(run.run_id):
            _clean_up(store, run.run_id, grid_url)  # found dead by a runner of another host
    return dead


def _clean_up(store: Store, run_id: str, grid_url: str | None = None) -> int:
    """Kill what a dead run of this host left running, remove its work
    directories; returns how many processes were killed."""
    killed = _close_remote(store, run_id, grid_url)
    rows = store.open_processes(run_id)
    killed += _kill_registered(rows, run_id)
    for row in rows:
        remove_workdir(row.workdir)
    for leftover in Path(tempfile.gettempdir()).glob(run_workdir_prefix(run_id) + "*"):
        remove_workdir(str(leftover))
    store.end_processes(row.id for row in rows)
    return killed


def _close_remote(store: Store, run_id: str, grid_url: str | None = None) -> int:
    """Close the Grid sessions a dead run left open (reachable from any host);
    returns how many the Grid closed."""
    rows = [row for row in store.open_processes(run_id) if row.kind == GRID_SESSION]
    closed = sum(close_grid_session(row.workdir, grid_url=grid_url) for row in rows if row.workdir)
    store.end_processes(row.id for row in rows)
    return closed
