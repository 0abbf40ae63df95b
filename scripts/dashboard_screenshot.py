"""Take the README's screenshot of the live dashboard, mid-run of a stress scenario.

Runs ``enduro stress --scenario production --dashboard PORT`` (the real
tester, its real faults), opens the dashboard in headless Chromium once the
given share of the pages is done, saves a PNG, and lets the run finish.

    .venv/bin/python scripts/dashboard_screenshot.py            # docs/dashboard.png
    .venv/bin/python scripts/dashboard_screenshot.py --at 0.3 --out /tmp/shot.png
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from enduro.session import CHROMIUM_FLAGS, find_browser
from enduro.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="production")
    parser.add_argument("--at", type=float, default=0.5, help="share of pages done to shoot at")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = parser.parse_args()
    port = free_port()
    report = Path(tempfile.mkdtemp(prefix="enduro-shot-"))
    enduro = str(Path(sys.executable).parent / "enduro")
    stress = subprocess.Popen(
        [
            enduro,
            "stress",
            "--scenario",
            args.scenario,
            "--report-dir",
            str(report / "run"),
            "--dashboard",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:  # until the share of pages is done
            if stress.poll() is not None:
                raise SystemExit(f"the stress run ended first (exit {stress.returncode})")
            try:
                live = httpx.get(url + "api/live", timeout=5).json()
            except httpx.HTTPError:
                live = {}
            pages = live.get("pages") or {}
            if pages.get("total") and pages["done"] >= args.at * pages["total"]:
                break
            time.sleep(1)
        chromium, chromedriver = find_browser(Settings())
        options = Options()
        options.binary_location = chromium
        options.add_argument("--headless")
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument("--window-size=1300,2050")
        options.add_argument(f"--user-data-dir={report / 'profile'}")
        browser = Chrome(options=options, service=Service(chromedriver))
        try:
            browser.get(url)
            time.sleep(4)  # a few polls: the charts drawn
            args.out.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(args.out))
        finally:
            browser.quit()
        print(f"screenshot: {args.out} ({pages['done']}/{pages['total']} pages done)")
        print(f"the run goes on to its verdict: {report / 'run'}")
        stress.wait()
    finally:
        if stress.poll() is None:
            stress.terminate()
            stress.wait()


if __name__ == "__main__":
    main()
