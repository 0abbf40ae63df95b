"""The tester's fleet, with stand-in runners on a real PostgreSQL server of the
tester's own: one runner per slot, each its own host, the store's URL without its
password (which comes in ``PGPASSWORD``), all stopped at the budget, the shared
store copied into the report directory and the server removed."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from enduro.errors import UsageError
from enduro.store import Store
from enduro.stress import _postgres, tester
from enduro.stress.record import read_record
from enduro.stress.scenario import load_scenario

# prints what it was given, then waits to be stopped
TELL = (
    "import os, sys, time; "
    "print(os.environ.get('ENDURO_HOST_ID'), sys.argv[1], os.environ.get('PGPASSWORD'), "
    "os.getcwd(), flush=True); time.sleep(120)"
)


def test_each_slot_runs_its_own_host_on_the_shared_store(tmp_path: Path) -> None:
    config = load_scenario("fleet", pages=20, seed=3)
    clusters = set(Path(tempfile.gettempdir()).glob("enduro-pg-*"))
    logs = [tmp_path / f"runner-{n}.log" for n in (1, 2, 3)]

    def budget_spent() -> float:  # the budget runs out once every runner has spoken
        told = all(log.exists() and log.read_text().strip() for log in logs)
        return 10_000.0 if told else 0.0

    stress = tester.ProductionStressTester(
        config,
        tmp_path,
        runner_command=lambda store: [sys.executable, "-c", TELL, str(store)],
        monotonic=budget_spent,
        sleep=lambda _: None,
    )
    record = stress.run()

    assert record.stopped_early == "time budget spent"
    assert record.runner_starts == 3
    told = [log.read_text().split() for log in logs]
    assert sorted(host for host, *_ in told) == ["stress-1", "stress-2", "stress-3"]
    [url] = {url for _, url, *_ in told}
    [password] = {password for _, _, password, _ in told}
    assert url.startswith("postgresql://enduro@127.0.0.1:") and url.endswith("/stress")
    assert password and password not in url and len(password) >= 20
    assert {cwd for *_, cwd in told} == {str(tmp_path)}
    # the store the runners were given (made by the tester) is now the report's own
    assert read_record(tmp_path).store_path == tmp_path / "stress.db"
    with Store.open(tmp_path / "stress.db", create=False) as store:
        assert store.runs() == [] and store.page_counts()["total"] == 0
    assert set(Path(tempfile.gettempdir()).glob("enduro-pg-*")) == clusters  # removed
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".log":
            assert password.encode() not in path.read_bytes(), path


def test_a_fleet_on_a_machine_without_postgresql_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_postgres.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(_postgres.shutil, "which", lambda name: None)
    tester.preflight(load_scenario("light"))  # a SQLite store: nothing to find
    with pytest.raises(UsageError) as caught:
        tester.preflight(load_scenario("light", runners=2))
    assert caught.value.format_line() == (
        "error: no PostgreSQL server found (initdb) (install Debian's postgresql: "
        "`make setup` does)"
    )
