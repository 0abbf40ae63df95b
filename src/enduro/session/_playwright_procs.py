"""The processes of the Playwright backend: the Chromium it launches, the Node
driver of each thread's Playwright (see ``_playwright``; ARCHITECTURE.md,
"Browser backends")."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from enduro.errors import BrowserDead, BrowserNotFound
from enduro.session._backend import ProcessRegistry
from enduro.session._cdp import CdpError, DevToolsLink, read_devtools_port
from enduro.session._flags import CHROMIUM_FLAGS
from enduro.session._processes import process_alive, remove_workdir, run_workdir_prefix
from enduro.settings import Settings

__all__ = ["LAUNCH_SECONDS", "Chromium", "Driver", "start_driver"]

log = logging.getLogger(__name__)

# Chromium writes its DevTools port within ~0.2 s here; a browser that has not
# after this long is not coming.
LAUNCH_SECONDS = 30.0


class _DriverGoneNoise(logging.Filter):
    """Drops asyncio's "Future exception was never retrieved" about a Node driver
    that was killed: Playwright leaves that future behind; the backend has already
    noticed the driver is gone (and says so in the page's signals)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return (
            "Connection closed while reading from the driver"
            not in str(record.exc_info[1] if record.exc_info else "") + record.getMessage()
        )


logging.getLogger("asyncio").addFilter(_DriverGoneNoise())


class Chromium:
    """One Chromium this backend launched, its work directory and registry rows."""

    def __init__(self, settings: Settings, run_id: str, registry: ProcessRegistry) -> None:
        self._settings = settings
        self._run_id = run_id
        self._registry = registry
        self._lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.workdir: str | None = None
        self.devtools: DevToolsLink | None = None
        self.ws_url = ""
        # the browser context the handler's page lives in (None: not connected yet)
        self.context_id: str | None = None
        self._ids: list[int] = []
        self._collecting: threading.Thread | None = None
        self.background = False

    def launch(self, background: bool = False) -> None:
        """Start Chromium and wait until its DevTools endpoint is up.

        Args:
            background: start it under SCHED_IDLE (a spare takes only idle CPU);
                :meth:`to_foreground` undoes it.

        Raises:
            BrowserNotFound: no Chromium is installed.
            BrowserDead: it exited or did not open DevTools in time.
        """
        chromium = shutil.which(self._settings.chromium)
        if chromium is None:
            raise BrowserNotFound(
                f"Chromium not found (looked for {self._settings.chromium!r})",
                "run `make setup`, or apt-get install chromium",
            )
        workdir = tempfile.mkdtemp(prefix=run_workdir_prefix(self._run_id))
        os.makedirs(os.path.join(workdir, "tmp"))
        profile = Path(workdir) / "profile"
        args = [chromium, *(["--headless"] if self._settings.headless else []), *CHROMIUM_FLAGS]
        # No first tab: the handler's opens in a context of its own (see
        # PlaywrightSession._own_context), the browser's only page, which outside
        # tools (the stress tester's faults) find as its first.
        args += [f"--user-data-dir={profile}", "--remote-debugging-port=0", "--no-startup-window"]
        with self._lock:
            self.workdir = workdir
        try:
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "TMPDIR": os.path.join(workdir, "tmp")},
                start_new_session=True,  # its own group: one killpg ends every process
            )
            with self._lock:
                self.process, self.pid = process, process.pid
            self._register("browser", process.pid, process.pid)
            if background:
                with contextlib.suppress(OSError):
                    os.sched_setscheduler(process.pid, os.SCHED_IDLE, os.sched_param(0))
                    self.background = True
            self._wait_for_devtools(process, profile)
        except BaseException:
            self.kill()
            raise

    def _wait_for_devtools(self, process: subprocess.Popen[bytes], profile: Path) -> None:
        deadline = time.monotonic() + LAUNCH_SECONDS
        while (found := read_devtools_port(profile)) is None:
            if process.poll() is not None:
                raise BrowserDead(f"Chromium exited at start (code {process.returncode})")
            if time.monotonic() > deadline:
                raise BrowserDead(f"Chromium opened no DevTools port in {LAUNCH_SECONDS:.0f}s")
            time.sleep(0.02)
        port, path = found
        self.ws_url = f"ws://127.0.0.1:{port}{path}"
        self.devtools = DevToolsLink(self.ws_url)

    def _register(self, kind: str, pid: int, pgid: int | None) -> None:
        try:
            create_time = psutil.Process(pid).create_time()
        except psutil.Error:
            return
        row = self._registry.register(kind, pid, create_time, pgid, self.workdir)
        with self._lock:
            self._ids.append(row)

    def register_driver(self, pid: int) -> None:
        """Record the Node driver that drives this browser (under its work directory)."""
        self._register("driver", pid, None)

    def processes_alive(self) -> bool:
        process = self.process
        if process is None or process.poll() is not None:
            return False
        try:
            return psutil.Process(process.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    @property
    def pgid(self) -> int | None:
        return self.pid if self.process is not None else None

    def to_foreground(self) -> bool:
        """Move a background browser's processes back to normal scheduling."""
        if not self.background or self.pid is None:
            self.background = False
            return True
        self.background = False
        try:
            for proc in psutil.process_iter():
                with contextlib.suppress(psutil.Error, ProcessLookupError):
                    if (
                        os.getpgid(proc.pid) == self.pid
                        and os.sched_getscheduler(proc.pid) == os.SCHED_IDLE
                    ):
                        os.sched_setscheduler(proc.pid, os.SCHED_OTHER, os.sched_param(0))
        except PermissionError:
            return False
        return True

    def collect_garbage(self, timeout: float) -> bool:
        """Collect the garbage of the handler's page's heap, on a thread of its own:
        the page's thread goes on to its next page meanwhile (the call takes ~23 ms,
        most of it the renderer's). False if none was started: one is under way, or
        DevTools is not up.
        """
        devtools, context = self.devtools, self.context_id
        if devtools is None or (self._collecting is not None and self._collecting.is_alive()):
            return False

        def collect() -> None:
            try:
                devtools.page_calls(
                    [("HeapProfiler.collectGarbage", {})], timeout=timeout, context=context
                )
            except CdpError as exc:  # the browser went meanwhile, or its page did
                log.debug("garbage collection failed: %s", exc)

        self._collecting = threading.Thread(target=collect, name="enduro-gc", daemon=True)
        self._collecting.start()
        return True

    def kill(self) -> None:
        """SIGKILL every process of this browser; remove its work directory.

        Safe from any thread (the page deadline calls it) and safe twice.
        """
        with self._lock:
            process, workdir = self.process, self.workdir
            ids, self._ids = self._ids, []
            self.process = None
            self.workdir = None
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                process.wait(timeout=5)
        remove_workdir(workdir)
        if ids:
            self._registry.ended(ids)


@dataclass
class Driver:
    """Playwright on one thread: its sync API object and its Node process."""

    playwright: Any
    thread: int
    pid: int | None
    create_time: float
    owner: threading.Thread | None = None
    """The thread it belongs to (a thread's ident is reused once it ends)."""

    def alive(self) -> bool:
        return self.pid is None or process_alive(self.pid, self.create_time)

    def here(self) -> bool:
        """Whether it belongs to the thread asking."""
        return self.owner is threading.current_thread()

    def kill(self) -> None:
        """SIGKILL its Node process, if it still runs (from any thread): a Playwright
        call in flight on it fails at once."""
        if self.pid is not None and self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)


def start_driver() -> Driver:
    """Start Playwright on this thread, and find its Node driver process."""
    from playwright.sync_api import sync_playwright

    before = {p.pid for p in psutil.Process().children()}
    playwright = sync_playwright().start()
    node = next(
        (p for p in psutil.Process().children() if p.pid not in before and _is_driver(p)),
        None,
    )
    pid = create_time = None
    if node is not None:
        with contextlib.suppress(psutil.Error):
            pid, create_time = node.pid, node.create_time()
    return Driver(
        playwright, threading.get_ident(), pid, create_time or 0.0, threading.current_thread()
    )


def _is_driver(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return "run-driver" in process.cmdline()
    return False
