"""The ``enduro`` commands that need no browser: site, status, export, requeue."""

from __future__ import annotations

import contextlib
import csv
import http.client
import io
import json
import os
import re
import selectors
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from enduro.store import Store, dumps_record
from enduro.stress.site import ground_truth, hybrid_truth

ENDURO = Path(sys.executable).parent / "enduro"
JOB = "matches"
OTHER = "other"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ENDURO_")}


def enduro(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENDURO), *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _ok(*args: str, cwd: Path | None = None) -> str:
    done = enduro(*args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def _finish(store: Store, job: str, records: list[dict[str, object]]) -> str:
    page = store.claim(job, "run-a", 60.0)
    assert page is not None
    assert store.complete(page, "run-a", records, "id")
    return page.key


def _fail(store: Store, job: str) -> str:
    page = store.claim(job, "run-a", 60.0)
    assert page is not None
    assert store.fail_attempt(page, "run-a", f"TimeoutException: page {page.key}", None)
    return page.key


# Records chosen to stress CSV: non-ASCII, separators, quotes, newlines, nesting, gaps.
RECORDS_PAGE_1 = [
    {"id": "a1", "name": "José Müller", "cm": 41.5, "segments": 3},
    {"id": "a2", "name": 'Robert "Bob", Jr.', "cm": 7.0, "segments": 1, "note": "line1\nline2"},
]
RECORDS_PAGE_2 = [
    {"id": "b1", "name": "Zoë", "tags": ["x", "ü"], "extra": {"k": 1}},
]


@pytest.fixture
def filled_store(tmp_path: Path) -> Path:
    """Job ``matches``: pages 1-2 done, 3-4 failed, 5 leased, 6 pending; plus events.

    Job ``other``: one page done, with its own restart and error, which must not
    leak into ``matches``' totals.
    """
    path = tmp_path / "filled.db"
    with Store.open(path) as store:
        store.seed_pages(JOB, ["1", "2", "3", "4", "5", "6"])
        store.seed_pages(OTHER, ["x"])
        _finish(store, JOB, RECORDS_PAGE_1)
        _finish(store, JOB, RECORDS_PAGE_2)
        _fail(store, JOB)
        _fail(store, JOB)
        assert store.claim(JOB, "run-b", 60.0) is not None
        _finish(store, OTHER, [{"id": "o1"}])
        for _ in range(3):
            store.add_event("browser_restart", "restart", job=JOB)
        store.add_event("browser_restart", "restart", job=OTHER)
        for category, count in (("timeout", 4), ("browser_crash", 2), ("auth_lost", 1)):
            for _ in range(count):
                store.add_event("error", "boom", job=JOB, category=category, page_key="3")
        store.add_event("error", "boom", job=OTHER, category="network")
        store.add_event("browser_start", "start", job=JOB)  # not a restart
        for run, (requests, retries) in (("run-a", (90, 2)), ("run-b", (10, 1))):
            store.save_http_stats(
                run,
                JOB,
                {
                    "/api/v2/matches": {
                        "requests": requests,
                        "ok": requests - retries,
                        "retries": retries,
                        "errors": {"rate_limited": retries},
                        "latency": {"70": requests},  # bucket 70: about 79 ms
                    }
                },
            )
    return path


# --- site --------------------------------------------------------------------------------


def test_site_truth_prints_the_ground_truth() -> None:
    out = _ok("site", "--pages", "3", "--rows", "5", "--truth")

    lines = out.splitlines()
    assert len(lines) == 15
    assert lines == [dumps_record(record) for record in ground_truth(1, 3, 5)]
    assert [json.loads(line)["page"] for line in lines] == [1] * 5 + [2] * 5 + [3] * 5


def test_site_truth_depends_on_the_seed() -> None:
    one = _ok("site", "--pages", "2", "--rows", "3", "--truth")
    two = _ok("site", "--pages", "2", "--rows", "3", "--truth", "--seed", "2")

    assert two.splitlines() == [dumps_record(r) for r in ground_truth(2, 2, 3)]
    assert one != two


def test_site_truth_hybrid_prints_the_hybrid_truth() -> None:
    out = _ok("site", "--pages", "3", "--rows", "4", "--truth", "--hybrid", "--seed", "5")

    lines = out.splitlines()
    assert lines == [dumps_record(record) for record in hybrid_truth(5, 3, 4)]
    assert len(lines) == 12
    plain = _ok("site", "--pages", "3", "--rows", "4", "--truth", "--seed", "5").splitlines()
    # the list records, each with the two detail fields added
    for line, plain_line in zip(lines, plain, strict=True):
        record = json.loads(line)
        assert set(record) - set(json.loads(plain_line)) == {"longest_cm", "shared_ancestors"}
        assert {k: v for k, v in record.items() if k in json.loads(plain_line)} == json.loads(
            plain_line
        )


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        assert selector.select(timeout), "the site printed nothing"
    return proc.stdout.readline()


@contextlib.contextmanager
def _site(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``enduro site --port 0 ARGS`` as a process, stopped at the end."""
    proc = subprocess.Popen(
        [str(ENDURO), "site", "--port", "0", *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def site_process() -> Iterator[subprocess.Popen[str]]:
    with _site("--pages", "4", "--rows", "2") as proc:
        yield proc


def test_site_on_port_zero_prints_its_url_and_serves(
    site_process: subprocess.Popen[str],
) -> None:
    line = _first_line(site_process, timeout=60)

    match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    assert match, line
    assert int(match.group(1)) > 0
    with urllib.request.urlopen(f"{match.group(0)}/healthz", timeout=10) as response:
        assert response.status == 200
        assert response.read().decode().strip() == "ok"
    assert site_process.poll() is None


def test_site_with_hybrid_serves_the_json_api() -> None:
    with _site("--pages", "2", "--rows", "2", "--hybrid") as proc:
        match = re.search(r"http://127\.0\.0\.1:(\d+)", _first_line(proc, timeout=60))
        assert match
        conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
        try:
            conn.request("GET", "/api/v2/matches?currentPage=1")
            response = conn.getresponse()
            # the API is there and wants a login (a 404 would be a plain page)
            assert response.status == 303
            assert (
                response.getheader("Location")
                == "/login?next=%2Fapi%2Fv2%2Fmatches%3FcurrentPage%3D1"
            )
        finally:
            conn.close()


# --- status --------------------------------------------------------------------------------


def test_status_json_counts(filled_store: Path) -> None:
    report = json.loads(_ok("status", str(filled_store), "--json"))

    assert report["store"] == str(filled_store)
    assert set(report["jobs"]) == {JOB, OTHER}
    matches = report["jobs"][JOB]
    assert matches["pages"] == {
        "pending": 1,
        "leased": 1,
        "done": 2,
        "failed": 2,
        "total": 6,
    }
    assert matches["records"] == 3
    assert matches["restarts"] == 3
    assert matches["errors"] == {"timeout": 4, "browser_crash": 2, "auth_lost": 1}
    assert matches["failed_pages"] == [
        ["3", "TimeoutException: page 3"],
        ["4", "TimeoutException: page 4"],
    ]
    other = report["jobs"][OTHER]
    assert other["pages"]["done"] == 1
    assert (other["records"], other["restarts"], other["errors"]) == (1, 1, {"network": 1})


def test_status_counts_a_record_key_that_moved_to_a_later_page(tmp_path: Path) -> None:
    path = tmp_path / "moved.db"
    with Store.open(path) as store:
        store.seed_pages(JOB, ["1", "2"])
        _finish(store, JOB, [{"id": "m1", "on": 1}, {"id": "a"}])
        _finish(store, JOB, [{"id": "b"}, {"id": "m1", "on": 2}])  # m1 moved down the list

    report = json.loads(_ok("status", str(path), "--json"))
    text = _ok("status", str(path))
    exported = _ok("export", str(path), "--format", "jsonl").splitlines()

    assert report["jobs"][JOB]["key_moved"] == 1
    assert report["jobs"][JOB]["records"] == 3
    assert [json.loads(line) for line in exported] == [
        {"id": "a"},
        {"id": "b"},
        {"id": "m1", "on": 2},  # one record, the later page's
    ]
    assert "record keys moved to another page: 1" in text


def test_status_text_and_json_show_each_categorys_most_frequent_message(
    filled_store: Path,
) -> None:
    with Store.open(filled_store) as store:
        for page in ("5", "6"):
            store.add_event(
                "error",
                f"KeyError: 'row {page}'\n  at line 9",
                job=JOB,
                category="handler_bug",
                page_key=page,
            )
    report = json.loads(_ok("status", str(filled_store), "--json"))
    text = _ok("status", str(filled_store))

    assert report["jobs"][JOB]["top_errors"]["handler_bug"] == {
        "message": "KeyError: 'row 5'",
        "count": 2,
        "page": "5",
        "errors": 2,
    }
    assert "    handler_bug: KeyError: 'row 5' (2 of 2, e.g. page 5)" in text
    assert "    timeout: boom (4 of 4, e.g. page 3)" in text
    assert report["jobs"][OTHER]["top_errors"] == {
        "network": {"message": "boom", "count": 1, "page": None, "errors": 1}
    }


def test_status_of_an_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    Store.open(path).close()

    assert json.loads(_ok("status", str(path), "--json")) == {
        "store": str(path),
        "jobs": {},
        "latest_sample": None,
        "last_run_resources": None,
        "open_alerts": [],
    }
    assert "no job" in _ok("status", str(path))


def test_status_text_shows_a_sample_an_older_enduro_stored(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    older = {  # a sample from before memory_limit was recorded
        "ts": 1.0,
        "pages": 3,
        "browser_starts": 1,
        "mem_total": 8 * 2**30,
        "mem_available": 4 * 2**30,
        "mem_percent": 50.0,
        "cpu_percent": 12.0,
        "runner_rss": 90 * 2**20,
        "browser_count": 10,
        "browser_rss": 600 * 2**20,
        "browser_pss": 300 * 2**20,
        "spare_count": 0,
        "open_fds": 20,
        "zombies": 0,
        "disk_free": 10 * 2**30,
    }
    with Store.open(path) as store:
        store.add_sample("run-old", 1.0, 3, older)

    out = " ".join(_ok("status", str(path)).split())
    assert "latest sample: memory 50% (host)" in out and "PSS 300 MB" in out


def test_status_text_mentions_the_totals(filled_store: Path) -> None:
    out = " ".join(_ok("status", str(filled_store)).split())  # rich wraps long lines

    assert "2/6 pages done" in out
    assert "3 browser restarts" in out
    assert "timeout 4" in out
    assert (
        "ctx.http /api/v2/matches: 100 requests, 3 retried inside the page; "
        "failures: rate_limited 3; p50 79 ms, p95 79 ms"
    ) in out


def test_status_json_adds_up_the_http_counts_of_every_run(filled_store: Path) -> None:
    report = json.loads(_ok("status", str(filled_store), "--json"))

    assert report["jobs"][JOB]["http"] == {
        "/api/v2/matches": {
            "requests": 100,
            "ok": 97,
            "retries": 3,
            "errors": {"rate_limited": 3},
            "latency_ms": {"p50": 79.0, "p95": 79.0, "p99": 79.0},
        }
    }
    assert report["jobs"][OTHER]["http"] == {}


# --- export --------------------------------------------------------------------------------


def test_export_jsonl(filled_store: Path) -> None:
    out = _ok("export", str(filled_store), "--format", "jsonl", "--job", JOB)

    expected = [dumps_record(r) for r in RECORDS_PAGE_1 + RECORDS_PAGE_2]
    assert out.splitlines() == expected


def test_export_jsonl_of_every_job(filled_store: Path) -> None:
    out = _ok("export", str(filled_store), "--format", "jsonl")

    assert [json.loads(line)["id"] for line in out.splitlines()] == ["a1", "a2", "b1", "o1"]


def _csv_value(value: object) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def test_export_csv(filled_store: Path) -> None:
    out = _ok("export", str(filled_store), "--format", "csv", "--job", JOB)

    reader = csv.DictReader(io.StringIO(out, newline=""))
    rows = list(reader)
    records = RECORDS_PAGE_1 + RECORDS_PAGE_2
    union = {key for record in records for key in record}
    assert reader.fieldnames is not None
    assert set(reader.fieldnames) == union
    assert len(reader.fieldnames) == len(union)
    assert len(rows) == len(records)
    for row, record in zip(rows, records, strict=True):
        for key in union:
            if key in record:
                assert row[key] == _csv_value(record[key]), key
            else:
                assert row[key] == "", key
    # Nested values come back as the same JSON.
    assert json.loads(rows[2]["tags"]) == ["x", "ü"]
    assert json.loads(rows[2]["extra"]) == {"k": 1}


def test_export_to_a_file(filled_store: Path, tmp_path: Path) -> None:
    out_jsonl = tmp_path / "out.jsonl"
    out_csv = tmp_path / "out.csv"

    assert _ok("export", str(filled_store), "--format", "jsonl", "--out", str(out_jsonl)) == ""
    assert _ok("export", str(filled_store), "--format", "csv", "--out", str(out_csv)) == ""

    stdout_jsonl = _ok("export", str(filled_store), "--format", "jsonl")
    assert out_jsonl.read_text(encoding="utf-8") == stdout_jsonl
    assert len(stdout_jsonl.splitlines()) == 4
    with out_csv.open(encoding="utf-8", newline="") as stream:
        assert [row["id"] for row in csv.DictReader(stream)] == ["a1", "a2", "b1", "o1"]


# --- requeue -------------------------------------------------------------------------------


def _state(path: Path, key: str) -> tuple[object, object]:
    with Store.open(path, create=False) as store:
        row = store.page_status(JOB, key)
    assert row is not None
    return row["status"], row["attempts"]


def test_requeue_failed(filled_store: Path) -> None:
    assert _state(filled_store, "3") == ("failed", 1)

    out = _ok("requeue", str(filled_store), "--failed")

    assert "2 pages" in out
    assert _state(filled_store, "3") == ("pending", 0)
    assert _state(filled_store, "4") == ("pending", 0)
    assert _state(filled_store, "1") == ("done", 1)
    with Store.open(filled_store, create=False) as store:
        assert store.failed_pages() == []


def test_requeue_named_pages(filled_store: Path) -> None:
    out = _ok("requeue", str(filled_store), "--pages", "2,3", "--job", JOB)

    assert "2 pages" in out
    assert _state(filled_store, "2") == ("pending", 0)
    assert _state(filled_store, "3") == ("pending", 0)
    assert _state(filled_store, "1") == ("done", 1)
    assert _state(filled_store, "4") == ("failed", 1)
    with Store.open(filled_store, create=False) as store:
        assert store.record_count(JOB) == 3  # records stay until the page is done again
        page = store.claim(JOB, "run-c", 60.0)
        assert page is not None
        assert page.key == "2"


def test_status_json_shows_the_latest_sample_and_the_open_alerts_of_a_live_run(
    tmp_path: Path,
) -> None:
    import psutil

    path = tmp_path / "live.db"
    me = psutil.Process()
    with Store.open(path) as store:
        store.begin_run("live1", "job", "host", me.pid, me.create_time())  # this process: alive
        store.add_sample("live1", 1.0, 3, {"browser_pss": 1, "mem_percent": 10.0})
        store.add_sample("live1", 2.0, 9, {"browser_pss": 2, "mem_percent": 95.0})
        for metric, state in (
            ("mem_percent", "open"),
            ("cpu_percent", "open"),
            ("cpu_percent", "cleared"),
        ):
            store.add_event(
                "alert",
                f"{metric} {state}",
                run_id="live1",
                job="job",
                category=metric,
                data={"state": state, "value": 1.0},
            )
    report = json.loads(_ok("status", str(path), "--json"))
    assert report["latest_sample"] == {"run_id": "live1", "browser_pss": 2, "mem_percent": 95.0}
    assert [a["metric"] for a in report["open_alerts"]] == ["mem_percent"]

    with Store.open(path) as store:
        store.end_run("live1", "finished", 0)
    assert json.loads(_ok("status", str(path), "--json"))["open_alerts"] == []
