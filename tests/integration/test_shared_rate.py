"""Three runners of one job on one PostgreSQL store keep to the job's one rate
and to every Retry-After window any of them was told about — read from the
site's own request log, not from what the runners say they did."""

from __future__ import annotations

import bisect
import subprocess
from pathlib import Path

import pytest

from enduro.store import Store
from enduro.stress.site import FaultPlan, ScheduledFault
from enduro.stress.site.config import REQUEST_LOG

from .conftest import ENDURO, export_lines, reference_env, truth_lines

pytestmark = pytest.mark.integration

RUNNERS = 3
RATE = 3.0  # pages/s, all runners together: well under what three runners could do
RETRY_AFTER = 8.0
PAGES = 80


def _page_loads(site: object) -> list[tuple[float, int, str]]:
    """(arrival time, status, path) of every match-list page the site was asked for."""
    log = site.app[REQUEST_LOG]  # type: ignore[attr-defined]
    return [(e.at, e.status, e.path) for e in log if e.path.startswith("/matches?page=")]


def test_three_runners_keep_to_one_rate_and_one_retry_after_window(
    tmp_path: Path, site_factory: object, pg_url: str
) -> None:
    plan = FaultPlan(
        schedule=[ScheduledFault("rate_limit", after=40, request="document")],
        retry_after=RETRY_AFTER,
    )
    site = site_factory(PAGES, fault_plan=plan)  # type: ignore[operator]
    command = [
        ENDURO,
        "run",
        "enduro.stress.reference:job",
        "--store",
        pg_url,
        "--rate-max",
        str(RATE),
    ]
    Store.open(pg_url).close()
    procs = []
    for slot in range(RUNNERS):
        env = {**reference_env(site.url, PAGES), "ENDURO_HOST_ID": f"host-{slot}"}
        log = (tmp_path / f"runner-{slot}.log").open("wb")
        procs.append(  # in tmp_path: a PostgreSQL store's flight records go under the cwd
            subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=tmp_path)
        )
    codes = [proc.wait(timeout=600) for proc in procs]
    assert codes == [0] * RUNNERS, [p.read_text()[-1500:] for p in tmp_path.glob("*.log")]
    assert export_lines(pg_url) == truth_lines(PAGES)

    loads = _page_loads(site)
    times = [at for at, _, _ in loads]
    # never above the rate (+10%) over any 10 s window (each starting at a request)
    busiest = max(bisect.bisect_left(times, t + 10.0) - i for i, t in enumerate(times))
    first = max(range(len(times)), key=lambda i: bisect.bisect_left(times, times[i] + 10.0) - i)
    shown = [(round(at - times[first], 2), s, p) for at, s, p in loads[first : first + busiest]]
    assert busiest <= RATE * 10 * 1.1, f"{busiest} page loads in 10 s at {RATE}/s: {shown}"
    # and the runners were kept busy by it: the rate bound, not their own speed
    assert busiest >= RATE * 10 * 0.7, f"only {busiest} page loads in the busiest 10 s"

    limited = [at for at, status, _ in loads if status == 429]
    assert len(limited) == 1
    with Store.open(pg_url, create=False) as store:
        seen = min(e["ts"] for e in store.events(kind="rate_cut"))
    window_end = limited[0] + RETRY_AFTER
    assert limited[0] <= seen < window_end
    inside = [at - limited[0] for at in times if seen <= at < window_end]
    assert inside == [], f"page loads inside the Retry-After window, s after the 429: {inside}"
