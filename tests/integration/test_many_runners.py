"""Three runner processes share one PostgreSQL store: runners SIGKILLed at random
and restarted, the database server restarted mid-run — and the export is the
ground truth, with every page done exactly once (counted from the audit trail:
one ``page_done`` event per completion, written in the completion's own
transaction).

The light case runs in ``make test``; the 724-page case (a kill every 25-50 pages)
behind ``make stress``.
"""

from __future__ import annotations

import collections
import random
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from enduro.store import Store
from tests._postgres import PostgresServer

from .conftest import ENDURO, export_lines, reference_env, truth_lines

pytestmark = pytest.mark.integration

RUNNERS = 3


@dataclass
class Fleet:
    """``RUNNERS`` slots, each running ``enduro run`` with its own host id; a
    killed slot is started again at once, as a supervisor (systemd) would."""

    command: list[str]
    env: dict[str, str]
    logs: Path
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    exits: list[int] = field(default_factory=list)
    kills: int = 0

    def start(self, slot: int) -> None:
        env = {**self.env, "ENDURO_HOST_ID": f"host-{slot}"}
        log = (self.logs / f"runner-{slot}.log").open("ab")
        self.procs[slot] = subprocess.Popen(
            self.command,
            env=env,
            stdout=log,
            stderr=log,
            cwd=self.logs,  # flight records here
        )

    def registered(self, url: str) -> bool:
        """Whether every live runner has its run in the store (it has opened the store:
        one that opens it while the server is down gives up, as on a wrong URL)."""
        live = {proc.pid for proc in self.procs.values() if proc.poll() is None}
        with Store.open(url, create=False) as store:
            return live <= {run.pid for run in store.running_runs()}

    def kill(self, slot: int) -> None:
        proc = self.procs[slot]
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            self.kills += 1
        self.start(slot)

    def running(self) -> list[int]:
        return [slot for slot, proc in self.procs.items() if proc.poll() is None]

    def finished(self) -> bool:
        return not self.running()

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _done(url: str) -> int:
    with Store.open(url, create=False) as store:
        return store.page_counts()["done"]


def _run_fleet(
    tmp_path: Path,
    server: PostgresServer,
    url: str,
    site_url: str,
    pages: int,
    every: tuple[int, int],
    seed: int,
    max_kills: int,
) -> Fleet:
    """Run the fleet to the end, killing a random runner each time the fleet has done
    a random number of pages in ``every`` more (``max_kills`` at most: paced by pages,
    not seconds, so as many kills land on a fast machine as on a slow one), and
    restarting the database server once, when a third of the pages are done and
    every live runner has registered its run (a runner that starts while the server
    is down refuses to start, exit 2, as for a wrong URL)."""
    rng = random.Random(seed)
    command = [ENDURO, "run", "enduro.stress.reference:job", "--store", url]
    fleet = Fleet(command, reference_env(site_url, pages), tmp_path)
    Store.open(url).close()  # made once, so the first progress check finds a store
    try:
        for slot in range(RUNNERS):
            fleet.start(slot)
        next_kill = rng.randint(*every)
        db_restarted = False
        deadline = time.monotonic() + 1500
        while not fleet.finished():
            assert time.monotonic() < deadline, "the fleet did not finish"
            done = _done(url)
            if not db_restarted and done >= pages // 3 and fleet.registered(url):
                server.stop()
                time.sleep(3.0)  # the outage itself: runners must wait it out
                server.start()
                db_restarted = True
            if done >= next_kill and done < pages and fleet.kills < max_kills:
                fleet.kill(rng.choice(fleet.running() or [0]))
                next_kill = done + rng.randint(*every)
            time.sleep(0.2)
        assert db_restarted, "the fleet finished before the database could be restarted"
        fleet.exits = [proc.returncode for proc in fleet.procs.values()]
    finally:
        fleet.close()
    return fleet


def _check_exactly_once(url: str, pages: int) -> None:
    assert export_lines(url) == truth_lines(pages)
    with Store.open(url, create=False) as store:
        done = collections.Counter(e["page_key"] for e in store.events(kind="page_done"))
        counts = store.page_counts()
        hosts = {run.host for run in store.runs()}
    twice = {key: n for key, n in done.items() if n > 1}
    assert twice == {}, f"pages processed to done more than once: {twice}"
    assert sorted(done, key=int) == [str(k) for k in range(1, pages + 1)]
    assert counts == {"pending": 0, "leased": 0, "done": pages, "failed": 0, "total": pages}
    assert hosts == {f"host-{slot}" for slot in range(RUNNERS)}


def _prove(
    tmp_path: Path,
    site_factory: object,
    server: PostgresServer,
    url: str,
    pages: int,
    every: tuple[int, int],
    kills: int,
    max_kills: int | None = None,
) -> None:
    """``kills`` at least land; with ``max_kills`` None, exactly that many."""
    site = site_factory(pages)  # type: ignore[operator]

    fleet = _run_fleet(
        tmp_path,
        server,
        url,
        site.url,
        pages,
        every=every,
        seed=pages,
        max_kills=max_kills or kills,
    )

    assert fleet.kills >= kills, "too few kills landed to test sharing a store through them"
    assert fleet.exits == [0] * RUNNERS, [p.read_text()[-1500:] for p in tmp_path.glob("*.log")]
    _check_exactly_once(url, pages)


def test_three_runners_with_kills_and_a_database_restart_do_every_page_once(
    tmp_path: Path, site_factory: object, pg_server: PostgresServer, pg_url: str
) -> None:
    _prove(tmp_path, site_factory, pg_server, pg_url, pages=150, every=(8, 16), kills=5)


@pytest.mark.slow
def test_724_pages_three_runners_a_kill_every_25_to_50_pages_and_a_database_restart(
    tmp_path: Path, site_factory: object, pg_server: PostgresServer, pg_url: str
) -> None:
    _prove(
        tmp_path,
        site_factory,
        pg_server,
        pg_url,
        pages=724,
        every=(25, 50),
        kills=10,  # every 25-50 pages until every page is done: ~19 of 724
        max_kills=10_000,
    )
