"""The run record: the tester writes it with its injected clock and ids, and a finished
run is judged from it and its store alone, again and again, by ``enduro report DIR``."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from enduro.cli import main
from enduro.errors import UsageError
from enduro.report import CriterionId, read_results
from enduro.store import Store
from enduro.stress.analysis import analyse
from enduro.stress.injector import FailureInjector
from enduro.stress.record import RUN_FILE, RunRecord, judged_requests, read_record
from enduro.stress.scenario import PRESETS
from enduro.stress.site import RequestLogEntry, ground_truth
from enduro.stress.tester import JOB_NAME, ProductionStressTester

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _steps(first: float, then: float) -> Iterator[float]:
    return itertools.chain([first], itertools.repeat(then))


def test_the_tester_reads_its_clock_and_ids_from_what_it_is_given(tmp_path: Path) -> None:
    """A runner that never finishes, and a monotonic clock that jumps past the budget at
    once: the run stops on its budget, stamped with the given clock, under the given id."""
    wall = _steps(1000.0, 1900.0)
    monotonic = _steps(0.0, 10_000.0)
    naps: list[float] = []
    tester = ProductionStressTester(
        PRESETS["light"],
        tmp_path,
        runner_command=lambda store: SLEEPER,
        clock=lambda: next(wall),
        monotonic=lambda: next(monotonic),
        sleep=naps.append,
        new_id=lambda: "run-0001",
    )
    record = tester.run()

    assert record.stopped_early == "time budget spent"
    assert (record.started_at, record.ended_at) == (1000.0, 1900.0)
    assert record.run_id == "run-0001" and naps == []  # stopped before its first nap
    assert record.runner_starts == 1 and record.runner_exits == []
    assert record.deliveries and all(not d.delivered for d in record.deliveries)
    assert all(d.detail.endswith("before it was due") for d in record.deliveries)
    # what it saw is on disk, whole
    again = read_record(tmp_path)
    assert again.model_dump() == record.model_dump()
    assert again.fault_schedule() == tester.schedule
    assert again.store_path == tmp_path / "stress.db"


def test_a_run_record_that_is_missing_or_broken_is_one_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        read_record(tmp_path)
    (tmp_path / RUN_FILE).write_text('{"run_id": 3}')
    with pytest.raises(UsageError, match="is not a stress run record"):
        read_record(tmp_path)


def test_only_the_requests_around_a_retry_after_are_kept() -> None:
    def get(at: float, path: str, kind: str | None = None) -> RequestLogEntry:
        return RequestLogEntry(at=at, method="GET", path=path, status=200, fault_kind=kind)

    log = [
        get(1.0, "/matches?page=1"),
        get(10.0, "/matches?page=2", "rate_limit"),
        get(11.9, "/matches?page=3"),  # inside the 2 s window
        get(12.0, "/matches?page=4"),  # the window has ended
        get(30.0, "/matches?page=5", "maintenance"),
        get(30.5, "/static/matches.js"),
    ]
    assert [e.path for e in judged_requests(log, 1.5)] == [  # 1.5 s: the header says 2
        "/matches?page=2",
        "/matches?page=3",
        "/matches?page=5",
        "/static/matches.js",
    ]


def _finished_run(directory: Path) -> RunRecord:
    """A light run of 4 pages and no faults, as a tester would leave it: the store
    holding exactly the site's records, and the record beside it."""
    config = PRESETS["light"].model_copy(update={"pages": 4, "rows": 3, "faults": ()})
    keys = [str(page) for page in range(1, 5)]
    rows = list(ground_truth(config.seed, config.pages, config.rows))
    with Store.open(directory / "stress.db") as store:
        store.seed_pages(JOB_NAME, keys)
        for _ in keys:
            page = store.claim(JOB_NAME, "w", 30)
            assert page is not None
            mine = [r for r in rows if str(r["page"]) == page.key]
            store.complete(page, "w", mine, "match_id")
        done = sorted(store.done_at(JOB_NAME).values())
    record = RunRecord(
        run_id="r1",
        config=config,
        schedule=json.loads(FailureInjector(config).schedule().to_json()),
        job_name=JOB_NAME,
        record_key="match_id",
        keys=keys,
        started_at=done[0] - 1,
        ended_at=done[-1] + 1,
        runner_starts=1,
        runner_exits=[0],
    )
    record.write(directory)
    return record


def test_a_finished_run_is_judged_from_its_directory_alone(tmp_path: Path) -> None:
    record = _finished_run(tmp_path)
    results = analyse(tmp_path)

    assert results.verdict.go, [c.name for c in results.verdict.failed]
    assert results.pages_done == 4 and results.integrity.found == 12
    assert results.integrity.perfect
    assert results.started_at == record.started_at
    assert analyse(record.at(tmp_path)) == results  # the same, from the record in memory
    ids = {c.id: c for c in results.verdict.criteria}
    assert not ids[CriterionId.ERROR_RATE].judged  # 4 attempts
    assert results.verdict.judged < len(results.verdict.criteria)


def test_enduro_report_judges_a_run_again_and_writes_its_results(tmp_path: Path) -> None:
    _finished_run(tmp_path)
    first = analyse(tmp_path)
    out = CliRunner().invoke(main, ["report", str(tmp_path), "--json"])

    assert out.exit_code == 0, out.output
    written = read_results(tmp_path)
    assert written.verdict == first.verdict
    assert json.loads(out.stdout)["verdict"] == json.loads(first.verdict.model_dump_json())
    assert (tmp_path / "report.html").read_text().count('class="chart"') == 4

    # a store that lost a page's records since: judged again, NO-GO, exit 1
    with Store.open(tmp_path / "stress.db", create=False) as store:
        store.requeue(JOB_NAME, keys=["2"])
    out = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert out.exit_code == 1, out.output
    failed = {c.id for c in read_results(tmp_path).verdict.failed}
    assert CriterionId.COMPLETION in failed


@pytest.mark.parametrize("broken", [None, "{not json", '{"run_id": "x"}'])
def test_enduro_report_on_a_bad_directory_is_one_line_and_exit_2(
    tmp_path: Path, broken: str | None
) -> None:
    target = tmp_path / "missing"
    if broken is not None:
        target = tmp_path
        (tmp_path / RUN_FILE).write_text(broken)
    out = CliRunner().invoke(main, ["report", str(target)])
    assert out.exit_code == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), out.stderr
