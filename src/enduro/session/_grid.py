"""The Selenium Grid backend: browsers that live on other machines.

Sessions come from a Selenium Grid 4 (``webdriver.Remote`` at
``Settings.grid_url``, or ``--grid``) and are driven exactly as the local
backend drives its own (the same options, timeouts, DevTools calls and page
signals — the Grid passes chromedriver's commands through). What differs,
because the browser is not a process of this host:

- no PIDs: nothing is sampled or SIGKILLed here (:meth:`GridSession.process_groups`
  is empty, and the monitor says the browser's memory was not measured rather
  than showing 0); each session's address is recorded in the run's registry
  instead, so the next run closes the sessions of a run that was killed;
- a browser is ended politely: ``quit()`` asks the Grid to delete the session
  (which ends the node's chromedriver and Chromium), bounded in time, also
  when the page deadline cuts off a frozen call;
- every session carries its run's id as a capability (:data:`RUN_CAPABILITY`),
  so a session the Grid created in the instant before its run was killed —
  too late for the run to record it — is still found: the next run asks the
  Grid for the sessions of runs no longer running and closes them
  (:meth:`GridSession.reap`);
- a dead session shows in the Grid's answers (``invalid session id``, a
  refused or reset connection), which classify as ``browser_dead`` as they do
  locally; ``present`` can only say a session is held.

See ARCHITECTURE.md, "Browser backends".
"""

from __future__ import annotations

import contextlib
import json
import logging
import urllib.error
from dataclasses import dataclass
from typing import Any

from selenium.webdriver import Remote
from selenium.webdriver.chromium.remote_connection import ChromiumRemoteConnection
from selenium.webdriver.remote.client_config import ClientConfig
from selenium.webdriver.remote.command import Command

from enduro.errors import BrowserNotFound
from enduro.recovery import ErrorTable, register_errors
from enduro.session._backend import ProcessRegistry
from enduro.session._processes import (
    GRID_SESSION,
    close_grid_session,
    grid_request,
    grid_session_address,
    shown_url,
    split_credentials,
)
from enduro.session._selenium import BrowserSession, _Browser, chromium_options, set_timeouts
from enduro.settings import Settings
from enduro.store import Store

__all__ = [
    "GRID_ERRORS",
    "RUN_CAPABILITY",
    "GridSession",
    "GridSessionInfo",
    "grid_sessions",
    "grid_status",
]

log = logging.getLogger(__name__)

QUIT_TIMEOUT = 10.0  # seconds a polite close may take before it is given up
RUN_CAPABILITY = "enduro:run"  # the id of the run a Grid session belongs to

# What the Grid says when the node's browser or chromedriver is gone (measured
# here: SIGKILLing the node's Chromium under a page gives the first), on top of
# Selenium's own table, whose exceptions the Grid passes through.
GRID_ERRORS = ErrorTable(
    name="selenium-grid",
    patterns=(
        (r"Unable to execute request for an existing session", "browser_crash"),
        (r"Session \[?[0-9a-f-]+\]? (?:not found|was terminated|timed out)", "browser_crash"),
        (r"Could not start a new session", "driver_dead"),
    ),
)
register_errors(GRID_ERRORS)


class _RemoteChrome(Remote):
    """A remote Chromium that takes chromedriver's own commands as the local one
    does: DevTools calls and the logs page signals are read from (the Grid
    passes them through to the node's chromedriver)."""

    def __init__(self, url: str, options: Any) -> None:
        plain, credentials = split_credentials(url)
        user, _, password = (credentials or "").partition(":")
        config = ClientConfig(
            remote_server_addr=plain,
            keep_alive=True,
            timeout=120,
            username=user or None,
            password=password or None,
        )
        connection = ChromiumRemoteConnection(
            plain, vendor_prefix="goog", browser_name="chrome", client_config=config
        )
        super().__init__(command_executor=connection, options=options)

    def get_log(self, log_type: str) -> Any:
        return self.execute(Command.GET_LOG, {"type": log_type})["value"]


class _GridBrowser(_Browser):
    """One session on the Grid."""

    def __init__(
        self, settings: Settings, run_id: str, registry: ProcessRegistry, url: str
    ) -> None:
        super().__init__(settings, run_id, registry)
        self._url = url
        self.session_id: str | None = None
        self._entry: int | None = None

    def launch(self, background: bool = False) -> None:
        self.background = False  # the node's scheduling is not ours to change
        options = chromium_options(self._settings)
        options.set_capability(RUN_CAPABILITY, self._run_id)
        try:
            self.driver = _RemoteChrome(self._url, options)
            self.session_id = self.driver.session_id
            # recorded like a process: a run killed before it closes the session
            # leaves the next run the address to close it at
            self._entry = self._registry.register(
                GRID_SESSION, 0, 0.0, None, grid_session_address(self._url, self.session_id)
            )
            set_timeouts(self.driver, self._settings.page_timeout)
        except BaseException:
            self.kill()
            raise

    def processes_alive(self) -> bool:
        return self.driver is not None

    def to_foreground(self) -> bool:
        return True

    def retire(self) -> None:
        self.kill()

    def kill(self) -> None:
        """Ask the Grid to end the session, within :data:`QUIT_TIMEOUT`; safe twice
        and from another thread (the page watchdog uses it)."""
        with self._lock:
            driver, self.driver = self.driver, None
            entry, self._entry = self._entry, None
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.command_executor.client_config.timeout = QUIT_TIMEOUT
            try:
                driver.quit()
            except Exception as exc:  # the node or the Grid is gone: nothing left to close
                log.info("grid session %s: quit failed (%s)", self.session_id, type(exc).__name__)
        if entry is not None:
            self._registry.ended([entry])


class GridSession(BrowserSession):
    """The browser of one worker, from a Selenium Grid (``Settings.grid_url``).

    Everything else — restarts with a spare, cookies carried across them, page
    signals, the flight recorder — is the local backend's.
    """

    def _new_browser(self) -> _Browser:
        url = self._settings.grid_url
        assert url is not None, "GridSession needs Settings.grid_url"
        return _GridBrowser(self._settings, self._run_id, self._registry, url)

    @classmethod
    def preflight(cls, settings: Settings) -> None:
        """The Grid answers its status endpoint and says it is ready."""
        url = settings.grid_url
        if url is None:
            raise BrowserNotFound("no Selenium Grid URL given", "pass --grid or ENDURO_GRID_URL")
        status = grid_status(url, timeout=settings.health_timeout)
        if not status.get("ready"):
            raise BrowserNotFound(
                f"Selenium Grid at {shown_url(url)} is not ready: "
                f"{status.get('message', 'no message')}",
                "start its nodes, or check the URL",
            )

    @classmethod
    def reap(cls, store: Store, settings: Settings) -> int:
        """Close the sessions on this run's Grid that belong to runs of ``store``
        that are not running (ended, or found dead): the one a killed run had
        asked for but not yet recorded, or one whose polite close failed.

        Sessions of running runs, and of other stores' runs, are left alone.
        """
        url = settings.grid_url
        if url is None:
            return 0
        try:
            held = grid_sessions(url, timeout=settings.health_timeout)
        except BrowserNotFound as exc:
            log.info("grid sessions not listed: %s", exc)
            return 0
        wanted = {info.run_id for info in held if info.run_id is not None}
        if not wanted:
            return 0
        over = {run.run_id for run in store.runs() if run.status != "running"} & wanted
        closed = 0
        for info in held:
            if info.run_id in over:
                address = grid_session_address(url, info.session_id)
                closed += close_grid_session(address, grid_url=url)
                log.info("closed grid session %s left by run %s", info.session_id, info.run_id)
        return closed


@dataclass(frozen=True)
class GridSessionInfo:
    """One session a Grid's node holds, as its ``/status`` lists it.

    Attributes:
        session_id: the Grid's id for it.
        run_id: the enduro run it belongs to (:data:`RUN_CAPABILITY`; None for
            a session enduro did not start).
        browser_pid: the node's browser process, numbered by the node's host
            (chromedriver's ``goog:processID``).
        devtools: the browser's DevTools address on the node's host
            (``goog:chromeOptions.debuggerAddress``, ``localhost:PORT``).
        started: when the Grid created it (ISO 8601, as the Grid says).
    """

    session_id: str
    run_id: str | None
    browser_pid: int | None
    devtools: str | None
    started: str


def grid_sessions(url: str, timeout: float = 5.0) -> list[GridSessionInfo]:
    """The sessions the Grid's nodes hold now, oldest first."""
    held = []
    for node in grid_status(url, timeout).get("nodes", []):
        for slot in node.get("slots", []):
            session = slot.get("session")
            if not session or not session.get("sessionId"):
                continue
            caps = session.get("capabilities") or {}
            owner = caps.get(RUN_CAPABILITY)
            pid = caps.get("goog:processID")
            devtools = (caps.get("goog:chromeOptions") or {}).get("debuggerAddress")
            held.append(
                GridSessionInfo(
                    session_id=str(session["sessionId"]),
                    run_id=owner if isinstance(owner, str) else None,
                    browser_pid=pid if isinstance(pid, int) else None,
                    devtools=devtools if isinstance(devtools, str) else None,
                    started=str(session.get("start", "")),
                )
            )
    return sorted(held, key=lambda info: info.started)


def grid_status(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """The Grid's ``/status`` answer (``value``).

    Raises:
        BrowserNotFound: the Grid does not answer, or not as a Grid does.
    """
    try:
        body = json.loads(grid_request(url.rstrip("/") + "/status", timeout=timeout))
        value = body["value"]
        if not isinstance(value, dict):
            raise TypeError("value is not an object")
        return value
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BrowserNotFound(
            f"Selenium Grid at {shown_url(url)} does not answer ({reason})",
            "check --grid / ENDURO_GRID_URL and that the Grid is running",
        ) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise BrowserNotFound(
            f"{shown_url(url)} answered /status, but not as a Selenium Grid does", "check the URL"
        ) from exc
