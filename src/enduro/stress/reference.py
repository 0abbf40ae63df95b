"""The reference job for the built-in site: log in, extract the 50 rows of a page.

Its records are exactly the site's ground truth (``enduro site --truth``).
Run it against a site you started yourself with::

    enduro site --pages 100 &
    ENDURO_SITE_URL=http://127.0.0.1:8700 ENDURO_SITE_PAGES=100 \\
        enduro run enduro.stress.reference:job --store s.db

Three WebDriver calls per page (navigate, wait, read): the number of
round trips decides speed (BROWSER-FACTS.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from enduro.errors import AuthLost, PageError
from enduro.job import Job, PageContext, Record

__all__ = [
    "COLLECT_ROWS_JS",
    "WAIT_READY_JS",
    "extract_page",
    "job",
    "logged_in_hook",
    "login_hook",
    "make_job",
    "parse_row",
]

DEFAULT_URL = "http://127.0.0.1:8700"
DEFAULT_USER = "demo"
DEFAULT_PASSWORD = "enduro-demo"

# Finds the rows' table, waits for the page's script to finish rendering, then
# hands back the state and the table found at the start (find, wait, read: if
# the page re-rendered the table meanwhile, reading it fails as stale). Resolves
# at once on a login form or on anything that is not a match list (an error
# page, a 429, Chromium's own network-error page).
WAIT_READY_JS = r"""
const done = arguments[arguments.length - 1];
const table = document.getElementById('matches');
function finish() {
  const body = document.body;
  if (location.pathname === '/login') { done({state: 'logged-out'}); return true; }
  // driver.get() returns once the document loaded, so a list page has its body
  // by now; one without (cut off mid-transfer, an error page) never will.
  if (!(body && body.dataset.page)) {
    done({state: 'unexpected', title: document.title}); return true;
  }
  const state = body ? body.dataset.state : undefined;
  if (state === 'ready') {
    done({state: state, table: table}); return true;
  }
  if (state && state !== 'loading') {
    done({state: state, error: body.dataset.error || ''}); return true;
  }
  return false;
}
if (!finish()) {
  const observer = new MutationObserver(() => { if (finish()) observer.disconnect(); });
  observer.observe(document.documentElement, {attributes: true, subtree: true, childList: true});
}
"""

# Every row's cells as text, read from the table element given as argument.
COLLECT_ROWS_JS = r"""
return Array.from(arguments[0].querySelectorAll('tr.match'), (tr) => {
  const row = {match_id: tr.dataset.matchId};
  for (const td of tr.querySelectorAll('td[data-field]')) {
    row[td.dataset.field] = td.textContent;
  }
  return row;
});
"""


def extract_page(driver: Any, base_url: str, key: str) -> list[Record]:
    """Load match-list page ``key`` and return its rows as records.

    Three WebDriver calls: navigate, wait for the rows (getting the table
    element), read them. Holding the element between the last two is what a
    real scraper does, so a table re-rendered in between fails for real
    (``StaleElementReferenceException``), and a page without the table raises
    ``NoSuchElementException``.

    Raises:
        AuthLost: the site showed its login form.
        PageError: the page is not a match list, or its script reported an error.
    """
    driver.get(f"{base_url.rstrip('/')}/matches?page={key}")
    result = driver.execute_async_script(WAIT_READY_JS)
    state = result.get("state")
    if state == "logged-out":
        raise AuthLost(f"page {key}: the site shows its login form")
    if state == "unexpected":
        raise PageError(f"page {key}: not a match list ({result.get('title') or 'no title'})")
    if state != "ready":
        raise PageError(f"page {key} did not render: {state} {result.get('error', '')}")
    table = result.get("table") or driver.find_element(By.ID, "matches")
    return [parse_row(row, int(key)) for row in driver.execute_script(COLLECT_ROWS_JS, table)]


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
        return extract_page(ctx.driver, base, ctx.key)

    return Job(
        name=name,
        pages=range(1, pages + 1),
        handler=extract,
        login=login_hook(base, username, password),
        is_logged_in=logged_in_hook(base),
        record_key="match_id",
        secrets=(password,),
    )


def login_hook(base: str, username: str, password: str) -> Callable[[PageContext], None]:
    """The login through the site's form in the browser (shared with the hybrid job).

    Raises (from the hook):
        AuthLost: the form stayed, or the site said the credentials are wrong.
    """

    def login(ctx: PageContext) -> None:
        driver = ctx.driver
        driver.get(f"{base}/login")
        driver.find_element(By.ID, "username").send_keys(username)
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "login-button").click()
        try:  # until we leave the login page, or it says the credentials are wrong
            WebDriverWait(driver, 15).until(
                lambda d: (
                    "/login" not in d.current_url
                    or d.find_elements(By.CSS_SELECTOR, ".login-error")
                )
            )
        except Exception as exc:
            raise AuthLost("login did not leave the login page") from exc
        if "/login" in driver.current_url:
            raise AuthLost("the site refused the login (wrong username or password?)")

    return login


def logged_in_hook(base: str) -> Callable[[PageContext], bool]:
    """``is_logged_in``: the site's session cookie in the browser's cookie jar."""

    def is_logged_in(ctx: PageContext) -> bool:
        # The browser's cookie jar for the site, whatever page it shows now
        # (WebDriver's get_cookie sees only the current page's cookies).
        found = ctx.driver.execute_cdp_cmd("Network.getCookies", {"urls": [base + "/"]})
        return any(c["name"] == "enduro_session" for c in found["cookies"])

    return is_logged_in


def job() -> Job:
    """The reference job, configured by ``ENDURO_SITE_URL``, ``ENDURO_SITE_PAGES``,
    ``ENDURO_SITE_USER`` and ``ENDURO_SITE_PASSWORD``."""
    return make_job(
        os.environ.get("ENDURO_SITE_URL", DEFAULT_URL),
        int(os.environ.get("ENDURO_SITE_PAGES", "724")),
        username=os.environ.get("ENDURO_SITE_USER", DEFAULT_USER),
        password=os.environ.get("ENDURO_SITE_PASSWORD", DEFAULT_PASSWORD),
    )
