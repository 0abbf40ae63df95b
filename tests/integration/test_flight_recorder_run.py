"""The flight recorder in a real run: first error of each group captured, secrets nowhere."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from enduro import Job, PageContext, Runner, Settings, Store
from enduro.store import flight_dir
from enduro.stress.reference import make_job
from enduro.stress.site import FaultPlan, ScheduledFault

from .conftest import export_lines, truth_lines

pytestmark = pytest.mark.integration

CANARY = "canary-Pa55w0rd-7f3e"
USER = "flight-user"
PAGES = 12
ROWS = 10


def test_first_error_of_each_group_is_captured_and_the_password_is_nowhere(
    tmp_path: Path, site_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    plan = FaultPlan(
        schedule=[
            ScheduledFault("stale_dom", page=3),
            ScheduledFault("stale_dom", page=6),  # same group again: no second capture
            ScheduledFault("maintenance", page=5),
            ScheduledFault("session_expiry", page=9),
        ],
        retry_after=1,
    )
    site = site_factory(PAGES, rows=ROWS, fault_plan=plan, username=USER, password=CANARY)
    base = make_job(site.url, PAGES, username=USER, password=CANARY)
    careless = threading.Event()

    def login(ctx: PageContext) -> None:
        assert base.login is not None
        if not careless.is_set():
            careless.set()  # a careless first login: the secret in the page, console and error
            ctx.driver.get(f"{site.url}/login")
            ctx.driver.execute_script(
                "document.title = 'login ' + arguments[0];"
                "document.body.insertAdjacentText('beforeend', arguments[0]);"
                "console.error('debug password=' + arguments[0]);",
                CANARY,
            )
            raise RuntimeError(f"login refused for {USER}/{CANARY}")
        base.login(ctx)

    job = Job(
        name="matches",
        pages=base.pages,
        handler=base.handler,
        login=login,
        record_key="match_id",
        secrets=(CANARY,),
    )
    store_path = tmp_path / "s.db"
    settings = Settings(
        store=store_path, monitor_interval=0, backoff_base=0.2, backoff_max=1, cooldown_default=1
    )
    caplog.set_level(logging.DEBUG)
    with Store.open(store_path) as store:
        result = Runner(job, store, settings).run()
    assert result.status == "finished", result.reason
    assert export_lines(store_path) == truth_lines(PAGES, ROWS)

    with Store.open(store_path, create=False) as store:
        errors = store.events(kind="error")
    captured = [e for e in errors if json.loads(e["data"]).get("flight")]
    groups = [(e["category"], e["message"].split(":")[0]) for e in captured]
    # one capture per group: the second stale page is not captured again
    assert sorted(groups) == sorted(set(groups))
    assert {g[0] for g in groups} >= {"element", "server_error", "auth_lost"}
    stale = [e for e in errors if e["category"] == "element"]
    assert len(stale) == 2 and sum(1 for e in stale if json.loads(e["data"]).get("flight")) == 1

    directory = flight_dir(store_path)
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    kinds = {p.suffix for p in files}
    assert {".png", ".html", ".json"} <= kinds
    for event in captured:
        for path in json.loads(event["data"])["flight"].values():
            full = Path(path) if Path(path).is_absolute() else store_path.parent / path
            assert full.is_file(), path
    auth_capture = next(e for e in captured if e["category"] == "auth_lost")
    html_path = json.loads(auth_capture["data"])["flight"]["html"]
    html_file = Path(html_path) if Path(html_path).is_absolute() else store_path.parent / html_path
    assert "[REDACTED]" in html_file.read_text()  # the secret was there, and was taken out

    secret = CANARY.encode()
    written = files + sorted(tmp_path.glob("s.db*"))
    leaks = [str(p) for p in written if p.is_file() and secret in p.read_bytes()]
    assert leaks == []
    assert CANARY not in caplog.text
    assert "[REDACTED]" in caplog.text or any("REDACTED" in e["message"] for e in errors)
