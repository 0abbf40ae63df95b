"""How do runners scale on one shared PostgreSQL store?

The same pages of the built-in site are walked by ``enduro run`` — the command
users run — as 1, 2 and 3 processes sharing one PostgreSQL store (each with its
own ``--host-id``), and, as the baseline, by 1 process on a SQLite file; all in
this one session, against one site served by a separate process. Each
configuration runs twice: against a site that answers at once (the machine is
the limit) and against a site that takes ``--pace`` seconds per page, as a
real site does (waiting is the limit, and runners add throughput).

pages/s is pages / wall time from the first runner's start to the last one's
exit (browser starts and logins included, as a user's run has them). While a
configuration runs, the CPU seconds of every process are summed by part —
Chromium (with its renderers), chromedriver, the runners (Python), PostgreSQL,
the site — and the machine's CPU use is sampled: that is the bottleneck,
measured, not guessed.

    .venv/bin/python benchmarks/scaleout.py --pages 120 --paced-pages 60 --pace 0.5

Prints a table and, with ``--json``, the figures; the README's table comes
from it. Needs Debian's postgresql (``make setup``): the server is a
throwaway cluster on loopback, started and stopped here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' throwaway PostgreSQL cluster

from benchmarks.overhead import site_process  # noqa: E402
from tests._postgres import PostgresServer, running_server  # noqa: E402

from enduro.store import Store  # noqa: E402

ENDURO = str(Path(sys.executable).parent / "enduro")
PARTS = ("chromium", "chromedriver", "runners", "postgres", "site")


def _part(proc: psutil.Process) -> str | None:
    """Which part of the system a process is (None: not ours)."""
    name = proc.name()
    if name.startswith("chrom") and "driver" not in name:
        return "chromium"
    if "chromedriver" in name:
        return "chromedriver"
    if name in ("postgres", "postmaster"):
        return "postgres"
    cmdline = " ".join(proc.cmdline())
    if "enduro site" in cmdline or " site --port" in cmdline:
        return "site"
    if "enduro run" in cmdline or "/enduro run" in cmdline:
        return "runners"
    return None


def ours(server: PostgresServer) -> list[psutil.Process]:
    """This benchmark's processes: its own descendants (the site, the runners,
    their chromedriver and Chromium trees) and the PostgreSQL server's."""
    found = psutil.Process().children(recursive=True)
    try:
        postmaster = psutil.Process(int((server.data / "postmaster.pid").read_text().split()[0]))
        found += [postmaster, *postmaster.children(recursive=True)]
    except (OSError, ValueError, IndexError, psutil.Error):
        pass
    return found


@dataclass
class CpuWatch:
    """Samples the CPU seconds of this benchmark's processes by part, and the
    machine's CPU use."""

    server: PostgresServer
    interval: float = 0.5
    seen: dict[tuple[int, float], tuple[str, float]] = field(default_factory=dict)
    machine: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> CpuWatch:
        psutil.cpu_percent(None)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.machine.append(psutil.cpu_percent(None))
            for proc in ours(self.server):
                try:
                    part = _part(proc)
                    if part is None:
                        continue
                    times = proc.cpu_times()
                    key = (proc.pid, proc.create_time())
                    self.seen[key] = (part, times.user + times.system)
                except psutil.Error:
                    continue

    def seconds(self, baseline: dict[tuple[int, float], float]) -> dict[str, float]:
        """CPU seconds by part since ``baseline`` (each process's CPU seconds then)."""
        total: dict[str, float] = defaultdict(float)
        for key, (part, cpu) in self.seen.items():
            total[part] += cpu - baseline.get(key, 0.0)
        return {part: round(total.get(part, 0.0), 1) for part in PARTS}


def snapshot(server: PostgresServer) -> dict[tuple[int, float], float]:
    """CPU seconds of our processes now (what a configuration's figures start from)."""
    taken = {}
    for proc in ours(server):
        try:
            times = proc.cpu_times()
            taken[(proc.pid, proc.create_time())] = times.user + times.system
        except psutil.Error:
            continue
    return taken


def walk(
    server: PostgresServer,
    store: str,
    runners: int,
    site: str,
    pages: int,
    folder: Path,
    tag: str,
) -> dict[str, object]:
    """``runners`` processes of ``enduro run`` on ``store`` until every page is done."""
    env = {
        **os.environ,
        "ENDURO_SITE_URL": site,
        "ENDURO_SITE_PAGES": str(pages),
        "ENDURO_MONITOR_INTERVAL": "0",
    }
    command = [ENDURO, "run", "enduro.stress.reference:job", "--store", store]
    logs = []
    baseline = snapshot(server)
    with CpuWatch(server) as watch:
        started = time.monotonic()
        procs = []
        for slot in range(runners):
            log = (folder / f"{tag}-runner-{slot}.log").open("wb")
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [*command, "--host-id", f"host-{slot}"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=folder,
                )
            )
        codes = [proc.wait() for proc in procs]
        wall = time.monotonic() - started
    for log in logs:
        log.close()
    with Store.open(store, create=False) as opened:
        done = opened.page_counts("matches")["done"]
        completions = len(opened.events(kind="page_done"))
    if set(codes) != {0} or done != pages or completions != pages:
        raise SystemExit(f"{tag}: exits {codes}, {done}/{pages} done, {completions} completions")
    busy = sorted(watch.machine)
    return {
        "runners": runners,
        "pages": pages,
        "seconds": round(wall, 2),
        "pages_per_s": round(pages / wall, 3),
        "cpu_seconds": watch.seconds(baseline),
        "machine_cpu_median_percent": busy[len(busy) // 2] if busy else 0.0,
    }


def configurations(
    server: PostgresServer, site: str, pages: int, folder: Path, label: str
) -> list[dict[str, object]]:
    rows = []
    sqlite = str(folder / f"{label}-sqlite.db")
    row = walk(server, sqlite, 1, site, pages, folder, f"{label}-sqlite")
    rows.append({"store": "sqlite", **row})
    for runners in (1, 2, 3):
        url = server.new_database()
        row = walk(server, url, runners, site, pages, folder, f"{label}-pg{runners}")
        rows.append({"store": "postgresql", **row})
    base = next(r for r in rows if r["store"] == "postgresql" and r["runners"] == 1)
    for r in rows:
        r["ratio_to_one_pg_runner"] = round(
            float(r["pages_per_s"]) / float(base["pages_per_s"]),  # type: ignore[arg-type]
            2,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=120, help="pages, unpaced site")
    parser.add_argument("--paced-pages", type=int, default=60, help="pages, paced site")
    parser.add_argument("--pace", type=float, default=0.5, help="seconds per page, paced site")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results: dict[str, object] = {"cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="enduro-scaleout-") as tmp, running_server() as pg:
        folder = Path(tmp)
        with site_process(args.pages) as site:
            results["unpaced"] = configurations(pg, site, args.pages, folder, "unpaced")
        with site_process(args.paced_pages, "--pace", str(args.pace)) as site:
            paced = configurations(pg, site, args.paced_pages, folder, "paced")
            results["paced"] = paced
        results["pace"] = args.pace

    if args.json:
        print(json.dumps(results, indent=1))
    header = f"{'site':<14}{'store':<12}{'runners':>8}{'pages/s':>9}{'ratio':>7}{'cpu%':>6}  "
    print(header + "CPU seconds: " + " ".join(f"{p:>12}" for p in PARTS))
    for label in ("unpaced", "paced"):
        name = "instant" if label == "unpaced" else f"{args.pace:g} s/page"
        for r in results[label]:  # type: ignore[attr-defined]
            cpu = r["cpu_seconds"]
            print(
                f"{name:<14}{r['store']:<12}{r['runners']:>8}{r['pages_per_s']:>9.2f}"
                f"{r['ratio_to_one_pg_runner']:>7.2f}{r['machine_cpu_median_percent']:>6.0f}  "
                "             " + " ".join(f"{cpu[p]:>12.1f}" for p in PARTS)
            )


if __name__ == "__main__":
    main()
