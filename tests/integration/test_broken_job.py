"""A broken job stops early and says why; a job with a few bad pages does not.

Both through ``enduro run`` on a job file a user would write, against the built-in
site: a job pointed at a wrong address (every page is "not a match list") halts
within its first pages with one line naming the failure, leaves every page pending,
and the fixed file finishes them all with the same command; a job that fails one
page in twenty while its browser and driver are killed from outside walks on to the
end. The summary and ``enduro status`` show each category's most frequent message.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from enduro.report import error_lines
from enduro.report._status import MESSAGE_CHARS
from enduro.store import Store

from .conftest import ENDURO, export_lines, live_processes_of, run_under_kills, truth_lines

pytestmark = pytest.mark.integration

JOB_FILE = """\
import os

from enduro import Job
from enduro.stress.reference import (
    DEFAULT_PASSWORD, DEFAULT_USER, extract_page, logged_in_hook, login_hook,
)

SITE = os.environ["ENDURO_SITE_URL"].rstrip("/")
PAGES = int(os.environ["ENDURO_SITE_PAGES"])
LISTS = SITE + {lists!r}  # where the match lists are


def handler(ctx):
    if {bad_every} and int(ctx.key) % {bad_every} == 0:
        raise ValueError("a row of this page has no relationship")
    return extract_page(ctx.driver, LISTS, ctx.key)


job = Job(
    name="matches",
    pages=range(1, PAGES + 1),
    handler=handler,
    login=login_hook(SITE, DEFAULT_USER, DEFAULT_PASSWORD),
    is_logged_in=logged_in_hook(SITE),
    record_key="match_id",
    secrets=(DEFAULT_PASSWORD,),
)
"""


def _write_job(path: Path, *, lists: str = "", bad_every: int = 0) -> Path:
    path.write_text(JOB_FILE.format(lists=lists, bad_every=bad_every))
    return path


def _env(url: str, pages: int, **settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "ENDURO_SITE_URL": url,
        "ENDURO_SITE_PAGES": str(pages),
        "ENDURO_MONITOR_INTERVAL": "0",
        "COLUMNS": "300",  # the summary's lines unwrapped, to be read whole
        **settings,
    }


def _status(store_path: Path) -> tuple[dict[str, Any], str]:
    as_json = subprocess.run(
        [ENDURO, "status", str(store_path), "--json"], capture_output=True, text=True, check=True
    )
    text = subprocess.run(
        [ENDURO, "status", str(store_path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    report: dict[str, Any] = json.loads(as_json.stdout)
    return report["jobs"]["matches"], text.stdout


def test_a_job_that_fails_on_every_page_halts_early_and_the_fixed_job_resumes(
    tmp_path: Path, site_factory: Any
) -> None:
    pages, rows = 724, 5
    site = site_factory(pages, rows=rows)
    store_path = tmp_path / "s.db"
    job_file = _write_job(tmp_path / "job.py", lists="/v1")  # a wrong address
    command = [ENDURO, "run", str(job_file), "--store", str(store_path)]

    broken = subprocess.run(command, env=_env(site.url, pages), capture_output=True, text=True)

    assert broken.returncode == 1, broken.stdout[-2000:] + broken.stderr[-3000:]
    said = [line for line in broken.stderr.splitlines() if line.startswith("the job looks broken")]
    assert len(said) == 1, broken.stderr[-3000:]
    resume = f"fix it and resume with: enduro run {job_file} --store {store_path}"
    found = re.fullmatch(
        r"the job looks broken: (PageError: page (\d+): not a match list .*) \((\d+) pages, e\.g\. "
        r"page (\d+)\); (.*)",
        said[0].strip(),
    )
    assert found is not None, said[0]
    assert found[2] == found[4] and int(found[3]) >= 5 and found[5] == resume, said[0]
    with Store.open(store_path, create=False) as store:
        counts = store.page_counts("matches")
        tried = {e["page_key"] for e in store.events("matches", kind="error")}
        assert {e["category"] for e in store.events("matches", kind="error")} == {"unknown"}
        assert store.events("matches", kind="cascade") == []  # the site was never probed
    assert (counts["pending"], counts["done"], counts["failed"]) == (pages, 0, 0)
    assert len(tried) <= 15, sorted(tried)

    _write_job(job_file)  # fixed: the right address
    fixed = subprocess.run(command, env=_env(site.url, pages), capture_output=True, text=True)

    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert export_lines(store_path) == truth_lines(pages, rows)
    assert live_processes_of(store_path) == []


def test_a_job_failing_one_page_in_twenty_under_kills_walks_on_to_the_end(
    tmp_path: Path, site_factory: Any
) -> None:
    pages, rows, bad_every = 240, 20, 20
    site = site_factory(pages, rows=rows)
    store_path = tmp_path / "s.db"
    job_file = _write_job(tmp_path / "job.py", bad_every=bad_every)
    command = [ENDURO, "run", str(job_file), "--store", str(store_path)]
    env = _env(site.url, pages, ENDURO_BACKOFF_BASE="0.2")

    code, output, killed = run_under_kills(command, env, store_path, (15, 25), seed=15)

    assert code == 1, output[-3000:]  # "failed": some pages failed, none left to do
    assert killed["browser"] >= 3 and killed["driver"] >= 3, killed
    bad = {str(n) for n in range(bad_every, pages + 1, bad_every)}
    with Store.open(store_path, create=False) as store:
        failed = {key for _, key, _ in store.failed_pages("matches")}
        counts = store.page_counts("matches")
        top = store.top_errors("matches")
        assert store.events("matches", kind="job_broken") == []
        assert store.events("matches", kind="halt") == []
    assert failed == bad and counts["done"] == pages - len(bad), (failed, counts)
    truth = [line for line in truth_lines(pages, rows) if json.loads(line)["page"] % 20]
    assert export_lines(store_path) == truth
    assert live_processes_of(store_path) == []
    assert "the job looks broken" not in output

    # the summary and the status name each category's most frequent message
    attempts = len(bad) * 2  # handler_bug_attempts
    expected = (
        f"handler_bug: ValueError: a row of this page has no relationship "
        f"({attempts} of {attempts}, e.g. page "
    )
    lines = error_lines(top)
    (bug_line,) = [line for line in lines if line.startswith("handler_bug")]
    assert bug_line.startswith(expected) and bug_line[len(expected) : -1] in bad, bug_line
    assert set(top) - {"handler_bug"} <= {"browser_crash", "driver_dead"}, top
    for line in lines:  # the crashes' lines too, as computed from the store
        assert line in output, (line, output[-3000:])
    status, text = _status(store_path)
    assert status["top_errors"] == top
    for line in lines:
        assert line in text, (line, text)


def test_the_demo_summary_and_status_show_each_categorys_most_frequent_message(
    tmp_path: Path,
) -> None:
    store_path = tmp_path / "demo.db"
    command = [ENDURO, "demo", "--pages", "100", "--rows", "10", "--store", str(store_path)]
    env = {**os.environ, "COLUMNS": "300", "ENDURO_MONITOR_INTERVAL": "0"}

    code, output, killed = run_under_kills(command, env, store_path, (10, 20), seed=7)

    assert code == 0, output[-3000:]
    with Store.open(store_path, create=False) as store:
        top = store.top_errors("matches")
        errors = store.events("matches", kind="error")
    assert sum(killed.values()) >= 2 and errors, (killed, output[-2000:])
    lines = error_lines(top)
    assert len(lines) == len(top) == len({e["category"] for e in errors})
    for category, line in zip(sorted(top), lines, strict=True):
        shown = top[category]
        assert shown["count"] >= 1 and shown["message"] and shown["page"], shown
        message = shown["message"]  # a long one (a driver's) is cut in the line
        if len(message) > MESSAGE_CHARS:
            message = message[: MESSAGE_CHARS - 1] + "…"
        assert line.startswith(f"{category}: {message} ({shown['count']} of "), line
        assert line in output, (line, output[-3000:])  # the demo's summary
    status, text = _status(store_path)
    assert status["top_errors"] == top and status["key_moved"] == 0
    for line in lines:
        assert f"    {line}" in text, (line, text)
