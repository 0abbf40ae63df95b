"""Fixtures shared by the session tests: a real Chromium, started as enduro starts it."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from enduro.session import CHROMIUM_FLAGS, find_browser
from enduro.session._signals import logging_options
from enduro.settings import Settings


@contextlib.contextmanager
def _chrome() -> Iterator[Any]:
    """Chromium as enduro starts it, with the logs on; its whole process group dies at the end.

    The work directory is short on purpose: Chromium's singleton socket lives
    under TMPDIR, and a Unix socket path longer than 107 bytes (pytest's
    tmp_path easily is) makes Chromium exit at start.
    """
    chromium, chromedriver = find_browser(Settings())
    with tempfile.TemporaryDirectory(prefix="enduro-t-", ignore_cleanup_errors=True) as workdir:
        options = Options()
        options.binary_location = chromium
        options.add_argument("--headless")
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={workdir}/profile")
        logging_options(options)
        os.mkdir(f"{workdir}/tmp")
        service = Service(
            chromedriver,
            env={**os.environ, "TMPDIR": f"{workdir}/tmp"},
            popen_kw={"start_new_session": True},
        )
        try:
            yield Chrome(options=options, service=service)
        finally:
            if service.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait(10)


@pytest.fixture
def chrome() -> Callable[[], AbstractContextManager[Any]]:
    """``with chrome() as driver:``: a real Chromium, its process group killed at the end."""
    return _chrome
