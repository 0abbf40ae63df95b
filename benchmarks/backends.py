"""Both browser backends side by side: bare loops and enduro, one site, one process.

The same N pages of the built-in site go through (a) a bare Playwright loop
(``chromium.launch`` on Debian's Chromium, the reference extraction through
``page.evaluate``), (a') the same loop on a Chromium started as enduro starts
it and attached to over its DevTools websocket (``connect_over_cdp``, the page
in a new context, as enduro's backend attaches: what enduro costs beyond it is
the runner's), (b)
enduro's runner on Playwright (``--backend playwright``: the reference job's
Playwright flavour, default settings — a SQLite store, a commit per page, a
garbage collection every 20 pages, a fresh tab every 250), (c) a bare Selenium
loop and (d) enduro on Selenium, in turn for ``--rounds`` rounds (every other round in
reverse order) against one site served by a separate process.
Where Crawlee for Python is installed (``pip install 'crawlee[playwright]'``,
an optional peer, never a dependency) its PlaywrightCrawler walks the same
pages too (``benchmarks/peers/crawlee_playwright.py``, in its own process);
the benchmark says so and skips it when it is absent. Prints pages/s of each
and the ratios enduro / bare: of the medians, and the median of each round's
own ratio (this machine's speed drifts between rounds more than between two
runs of one round).

    .venv/bin/python benchmarks/backends.py --pages 300 --rounds 3
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from enduro.job import PageContext
from enduro.session import CHROMIUM_FLAGS, LAUNCH_FLAGS
from enduro.settings import Settings
from enduro.stress.reference import extract_page_pw, make_job
from overhead import bare_loop, enduro_run, parse_args, site_process

PEER = Path(__file__).parent / "peers" / "crawlee_playwright.py"


def bare_playwright(url: str, pages: int) -> float:
    """The reference extraction in one plain Playwright browser; returns seconds."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which(Settings().chromium)
    assert chromium is not None, "Chromium is not installed"
    began = time.perf_counter()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=[*LAUNCH_FLAGS]
        )
        try:
            _walk(browser.new_page(), url, pages)
        finally:
            browser.close()
    return time.perf_counter() - began


def _walk(page: Any, url: str, pages: int) -> None:
    """Log in on ``page``, then read every page with the reference extraction."""
    job = make_job(url, pages, backend="playwright")
    assert job.login is not None
    job.login(PageContext(key="1", driver=None, page=page, attempt=1, job=job))
    count = 0
    for key in range(1, pages + 1):
        count += len(extract_page_pw(page, url, str(key)))
    assert count == pages * 50, count


def bare_playwright_attached(url: str, pages: int) -> float:
    """The same bare loop on a Chromium started the way enduro starts it (its own
    process, the same flags, a DevTools port, no first tab) and attached to over the
    DevTools websocket (``connect_over_cdp``), the page in a new context, as enduro's
    backend attaches; returns seconds.
    What enduro on Playwright costs beyond this is its runner's own cost."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which(Settings().chromium)
    assert chromium is not None, "Chromium is not installed"
    began = time.perf_counter()
    profile = Path(tempfile.mkdtemp(prefix="bench-attached-"))
    process = subprocess.Popen(
        [
            chromium,
            "--headless",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "--no-startup-window",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            assert process.poll() is None, "Chromium exited at start"
            time.sleep(0.01)
        port, path = port_file.read_text().splitlines()[:2]
        with sync_playwright() as playwright:
            browser = playwright.chromium.connect_over_cdp(f"ws://127.0.0.1:{port}{path}")
            _walk(browser.new_context().new_page(), url, pages)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return time.perf_counter() - began


def crawlee(url: str, pages: int) -> float | None:
    """Crawlee's PlaywrightCrawler on the same pages, in its own process (None: not
    installed). Returns seconds, as the peer script measured them."""
    python = os.environ.get("ENDURO_PEER_PYTHON", sys.executable)
    probe = subprocess.run([python, "-c", "import crawlee"], capture_output=True)
    if probe.returncode != 0:
        return None
    out = subprocess.run(
        [python, str(PEER), url, str(pages)], capture_output=True, text=True, timeout=1800
    )
    if out.returncode != 0:
        raise RuntimeError(f"crawlee peer failed: {out.stderr[-2000:]}")
    found = json.loads(out.stdout.strip().splitlines()[-1])
    if found["records"] != pages * 50:
        raise RuntimeError(f"crawlee stored {found['records']} of {pages * 50} records")
    return float(found["seconds"])


def main() -> None:
    args = parse_args(__doc__, pages=300, rounds=3)
    runs: dict[str, list[float]] = {
        "bare_playwright": [],
        "bare_playwright_attached": [],
        "enduro_playwright": [],
        "bare_selenium": [],
        "enduro_selenium": [],
        "crawlee_playwright": [],
    }
    crawlee_missing = False

    def crawlee_run(url: str, pages: int) -> float | None:
        nonlocal crawlee_missing
        seconds = None if crawlee_missing else crawlee(url, pages)
        crawlee_missing = seconds is None
        return seconds

    contenders: list[tuple[str, Any]] = [
        ("bare_playwright", bare_playwright),
        ("bare_playwright_attached", bare_playwright_attached),
        ("enduro_playwright", lambda url, n: enduro_run(url, n, backend="playwright")),
        ("bare_selenium", bare_loop),
        ("enduro_selenium", enduro_run),
        ("crawlee_playwright", crawlee_run),
    ]
    with site_process(args.pages) as url:
        for round_ in range(args.rounds):
            # every other round in reverse: no contender always runs in one slot
            for name, run in contenders if round_ % 2 == 0 else contenders[::-1]:
                seconds = run(url, args.pages)
                if seconds is not None:
                    runs[name].append(args.pages / seconds)
    # each round's enduro against the bare loop of the same round, too
    paired = {
        kind: statistics.median(
            e / b for e, b in zip(runs[f"enduro_{kind}"], runs[f"bare_{kind}"], strict=True)
        )
        for kind in ("playwright", "selenium")
    }
    medians = {name: statistics.median(each) for name, each in runs.items() if each}
    figures: dict[str, object] = {
        "pages": args.pages,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        **{f"{name}_pages_per_s": round(value, 2) for name, value in medians.items()},
        "ratio_playwright": round(medians["enduro_playwright"] / medians["bare_playwright"], 3),
        "ratio_playwright_attached": round(
            medians["enduro_playwright"] / medians["bare_playwright_attached"], 3
        ),
        "ratio_attached_to_bare": round(
            medians["bare_playwright_attached"] / medians["bare_playwright"], 3
        ),
        "ratio_selenium": round(medians["enduro_selenium"] / medians["bare_selenium"], 3),
        "ratio_playwright_paired": round(paired["playwright"], 3),
        "ratio_selenium_paired": round(paired["selenium"], 3),
        **{f"{name}_each": [round(x, 2) for x in each] for name, each in runs.items() if each},
        "crawlee": "not installed (pip install 'crawlee[playwright]')"
        if crawlee_missing
        else "run",
    }
    if "crawlee_playwright" in medians:
        figures["ratio_crawlee_to_bare_playwright"] = round(
            medians["crawlee_playwright"] / medians["bare_playwright"], 3
        )
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{args.pages} pages, {args.rounds} rounds (median pages/s)")
    for name, value in medians.items():
        print(f"  {name:24s}: {value:7.2f} pages/s  {[round(x, 2) for x in runs[name]]}")
    print(
        f"  enduro/bare on Playwright: {figures['ratio_playwright']:.3f}"
        f" (median of the rounds' own ratios: {figures['ratio_playwright_paired']:.3f})"
    )
    print(
        "  enduro/bare attached the way enduro attaches (connect_over_cdp): "
        f"{figures['ratio_playwright_attached']:.3f}"
    )
    print(f"  bare attached / bare launched: {figures['ratio_attached_to_bare']:.3f}")
    print(
        f"  enduro/bare on Selenium  : {figures['ratio_selenium']:.3f}"
        f" (median of the rounds' own ratios: {figures['ratio_selenium_paired']:.3f})"
    )
    if crawlee_missing:
        print("  Crawlee: not installed, skipped (pip install 'crawlee[playwright]')")
    else:
        print(f"  Crawlee/bare Playwright  : {figures['ratio_crawlee_to_bare_playwright']:.3f}")


if __name__ == "__main__":
    main()
