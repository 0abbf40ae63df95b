"""Credentials typed into the browser never reach a log file on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from enduro import PageContext, Settings
from enduro.session import BrowserSession
from enduro.stress.reference import make_job

from .conftest import FakeRegistry

pytestmark = pytest.mark.integration


def test_the_password_typed_at_login_is_not_in_the_driver_log(site_factory: Any) -> None:
    site = site_factory(2)
    job = make_job(site.url, 2, password="enduro-demo")
    registry = FakeRegistry()
    with BrowserSession(Settings(), "secrettest", registry) as session:
        session.start()
        assert job.login is not None
        job.login(PageContext(key="1", driver=session.driver, attempt=1, job=job))
        assert "/matches" in session.driver.current_url  # really logged in
        workdir = Path(registry.rows[0][4])
        logs = list(workdir.rglob("*.log"))
        assert logs, "chromedriver writes its log in the session's work directory"
        for log_file in logs:
            assert "enduro-demo" not in log_file.read_text(errors="replace")
    assert not workdir.exists()  # removed with the browser
