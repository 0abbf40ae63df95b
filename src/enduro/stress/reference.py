"""The reference job for the built-in site: log in, extract the 50 rows of a page.

Its records are exactly the site's ground truth (``enduro site --truth``).
Run it against a site you started yourself with::

    enduro site --pages 100 &
    ENDURO_SITE_URL=http://127.0.0.1:8700 ENDURO_SITE_PAGES=100 \\
        enduro run enduro.stress.reference:job --store s.db

One ``execute_async_script`` per page collects every row: the number of
WebDriver round trips decides speed (BROWSER-FACTS.md).
"""

from __future__ import annotations

import os
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from enduro.errors import AuthLost, PageError
from enduro.job import Job, PageContext, Record

__all__ = ["COLLECT_ROWS_JS", "job", "make_job", "parse_row"]

DEFAULT_URL = "http://127.0.0.1:8700"
DEFAULT_USER = "demo"
DEFAULT_PASSWORD = "enduro-demo"

# Waits for the page's script to finish rendering, then returns every row's
# cells as text. Resolves at once if the page is a login form.
COLLECT_ROWS_JS = r"""
const done = arguments[arguments.length - 1];
function finish() {
  const body = document.body;
  if (location.pathname === '/login') { done({state: 'logged-out'}); return true; }
  const state = body ? body.dataset.state : undefined;
  if (state === 'ready') {
    const rows = Array.from(document.querySelectorAll('#matches tr.match'), (tr) => {
      const row = {match_id: tr.dataset.matchId};
      for (const td of tr.querySelectorAll('td[data-field]')) {
        row[td.dataset.field] = td.textContent;
      }
      return row;
    });
    done({state: state, rows: rows});
    return true;
  }
  if (state && state !== 'loading') {
    done({state: state, error: body.dataset.error || ''});
    return true;
  }
  return false;
}
if (!finish()) {
  const observer = new MutationObserver(() => { if (finish()) observer.disconnect(); });
  observer.observe(document.documentElement, {attributes: true, subtree: true, childList: true});
}
"""


def parse_row(raw: dict[str, Any], page: int) -> Record:
    """Turn one row's cell texts into a typed record (the ground-truth shape)."""
    return {
        "match_id": str(raw["match_id"]),
        "name": str(raw["name"]),
        "shared_cm": float(raw["shared_cm"]),
        "segments": int(raw["segments"]),
        "relationship": str(raw["relationship"]),
        "tree_size": int(raw["tree_size"]),
        "last_active": str(raw["last_active"]),
        "page": page,
    }


def make_job(
    base_url: str,
    pages: int,
    *,
    username: str = DEFAULT_USER,
    password: str = DEFAULT_PASSWORD,
    name: str = "matches",
) -> Job:
    """The reference job for a built-in site at ``base_url`` with ``pages`` pages."""
    base = base_url.rstrip("/")

    def extract(ctx: PageContext) -> list[Record]:
        ctx.driver.get(f"{base}/matches?page={ctx.key}")
        result = ctx.driver.execute_async_script(COLLECT_ROWS_JS)
        state = result.get("state")
        if state == "logged-out":
            raise AuthLost(f"page {ctx.key}: the site shows its login form")
        if state != "ready":
            raise PageError(f"page {ctx.key} did not render: {state} {result.get('error', '')}")
        return [parse_row(row, int(ctx.key)) for row in result["rows"]]

    def login(ctx: PageContext) -> None:
        driver = ctx.driver
        driver.get(f"{base}/login")
        driver.find_element(By.ID, "username").send_keys(username)
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "login-button").click()
        try:
            WebDriverWait(driver, 15).until(lambda d: "/login" not in d.current_url)
        except Exception as exc:
            raise AuthLost("login did not leave the login page (wrong credentials?)") from exc

    def is_logged_in(ctx: PageContext) -> bool:
        return ctx.driver.get_cookie("enduro_session") is not None

    return Job(
        name=name,
        pages=range(1, pages + 1),
        handler=extract,
        login=login,
        is_logged_in=is_logged_in,
        record_key="match_id",
    )


def job() -> Job:
    """The reference job, configured by ``ENDURO_SITE_URL``, ``ENDURO_SITE_PAGES``,
    ``ENDURO_SITE_USER`` and ``ENDURO_SITE_PASSWORD``."""
    return make_job(
        os.environ.get("ENDURO_SITE_URL", DEFAULT_URL),
        int(os.environ.get("ENDURO_SITE_PAGES", "724")),
        username=os.environ.get("ENDURO_SITE_USER", DEFAULT_USER),
        password=os.environ.get("ENDURO_SITE_PASSWORD", DEFAULT_PASSWORD),
    )
