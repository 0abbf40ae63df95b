"""Redaction of a job's secrets from text and from log records."""

from __future__ import annotations

import html
import json
import logging
from urllib.parse import quote

import pytest

from enduro._secrets import REDACTED, redact, redacting_logs

SECRET = 'p@ss w0rd&<"é>'


@pytest.mark.parametrize(
    "form",
    [SECRET, quote(SECRET, safe=""), html.escape(SECRET), json.dumps(SECRET)[1:-1]],
    ids=["plain", "url", "html", "json"],
)
def test_every_form_of_a_secret_is_redacted(form: str) -> None:
    text = f"before {form} after"
    assert redact(text, [SECRET]) == f"before {REDACTED} after"


def test_empty_secrets_change_nothing() -> None:
    assert redact("nothing to hide", ["", ""]) == "nothing to hide"


def test_log_handlers_redact_while_inside_and_not_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("selenium.webdriver.remote.remote_connection")
    caplog.set_level(logging.DEBUG)
    with redacting_logs([SECRET]):
        logger.debug("POST /element/1/value %s", json.dumps({"text": SECRET}))
        try:
            raise ValueError(f"typed {SECRET}")
        except ValueError:
            logger.exception("failed")
    logger.debug("after %s", "plain")
    assert SECRET not in caplog.text
    assert json.dumps(SECRET)[1:-1] not in caplog.text
    assert caplog.text.count(REDACTED) >= 2
    assert "after plain" in caplog.text
