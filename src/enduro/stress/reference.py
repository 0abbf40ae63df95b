"""The reference job for the built-in site: log in, extract the 50 rows of a page.

Its records are exactly the site's ground truth (``enduro site --truth``).
Run it against a site you started yourself with::

    enduro site --pages 100 &
    ENDURO_SITE_URL=http://127.0.0.1:8700 ENDURO_SITE_PAGES=100 \\
        enduro run enduro.stress.reference:job --store s.db

Three WebDriver calls per page (navigate, wait, read): the number of
round trips decides speed (BROWSER-FACTS.md). ``make_job(..., backend="playwright")``
is the same job on Playwright (``ctx.page``), the same three round trips.
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
    "COLLECT_ROWS_PW",
    "WAIT_READY_JS",
    "WAIT_READY_PW",
    "extract_page",
    "extract_page_pw",
    "job",
    "logged_in_hook",
    "logged_in_hook_pw",
    "login_hook",
    "login_hook_pw",
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
    _check_ready(result, key)
    table = result.get("table") or driver.find_element(By.ID, "matches")
    return [parse_row(row, int(key)) for row in driver.execute_script(COLLECT_ROWS_JS, table)]


# The same wait and read for Playwright's page.evaluate: the wait resolves a
# promise with the state and keeps the table it found at the start; the read
# fails as a stale element if the page re-rendered that table meanwhile, and as
# a missing one if there is none (what WebDriver's own checks do).
WAIT_READY_PW = (
    "() => new Promise((resolve) => (function () {" + WAIT_READY_JS + "}).call(null, (found) => {"
    " window.__enduroTable = found.table || null; delete found.table; resolve(found); }))"
)
COLLECT_ROWS_PW = (
    "() => { let table = window.__enduroTable || document.getElementById('matches');"
    " if (!table) throw new Error('no such element: #matches');"
    " if (!table.isConnected) throw new Error('stale element: #matches was re-rendered');"
    " return (function () {" + COLLECT_ROWS_JS + "}).call(null, table); }"
)


def extract_page_pw(page: Any, base_url: str, key: str) -> list[Record]:
    """:func:`extract_page` on Playwright (``ctx.page``): navigate, wait, read —
    the same three round trips, the same errors for the same faults."""
    page.goto(f"{base_url.rstrip('/')}/matches?page={key}")
    _check_ready(page.evaluate(WAIT_READY_PW), key)
    return [parse_row(row, int(key)) for row in page.evaluate(COLLECT_ROWS_PW)]


def _check_ready(result: dict[str, Any], key: str) -> None:
    """What the wait found, unless the rows are ready.

    Raises:
        AuthLost: the site showed its login form.
        PageError: the page is not a match list, or its script reported an error.
    """
    state = result.get("state")
    if state == "logged-out":
        raise AuthLost(f"page {key}: the site shows its login form")
    if state == "unexpected":
        raise PageError(f"page {key}: not a match list ({result.get('title') or 'no title'})")
    if state != "ready":
        raise PageError(f"page {key} did not render: {state} {result.get('error', '')}")


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
    backend: str = "selenium",
) -> Job:
    """The reference job for a built-in site at ``base_url`` with ``pages`` pages,
    written for ``backend`` (``selenium``: ``ctx.driver``; ``playwright``:
    ``ctx.page``), which it pins."""
    base = base_url.rstrip("/")
    if backend not in ("selenium", "playwright"):
        raise ValueError(f"backend {backend!r} must be 'selenium' or 'playwright'")
    playwright = backend == "playwright"

    def extract(ctx: PageContext) -> list[Record]:
        if playwright:
            return extract_page_pw(ctx.page, base, ctx.key)
        return extract_page(ctx.driver, base, ctx.key)

    return Job(
        name=name,
        pages=range(1, pages + 1),
        handler=extract,
        login=(login_hook_pw if playwright else login_hook)(base, username, password),
        is_logged_in=(logged_in_hook_pw if playwright else logged_in_hook)(base),
        record_key="match_id",
        secrets=(password,),
        backend=backend,
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


def login_hook_pw(base: str, username: str, password: str) -> Callable[[PageContext], None]:
    """:func:`login_hook` on Playwright (``ctx.page``)."""

    def login(ctx: PageContext) -> None:
        page = ctx.page
        page.goto(f"{base}/login")
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("#login-button")
        try:  # until we leave the login page, or it says the credentials are wrong
            page.wait_for_function(
                "() => location.pathname !== '/login' || !!document.querySelector('.login-error')",
                timeout=15_000,
            )
        except Exception as exc:
            raise AuthLost("login did not leave the login page") from exc
        if "/login" in page.url:
            raise AuthLost("the site refused the login (wrong username or password?)")

    return login


def logged_in_hook_pw(base: str) -> Callable[[PageContext], bool]:
    """``is_logged_in`` on Playwright: the session cookie in the context's jar."""

    def is_logged_in(ctx: PageContext) -> bool:
        found = ctx.page.context.cookies(base + "/")
        return any(c["name"] == "enduro_session" for c in found)

    return is_logged_in


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
    ``ENDURO_SITE_USER`` and ``ENDURO_SITE_PASSWORD``; written for the backend the
    run is given (``ENDURO_BACKEND``, Selenium by default)."""
    return make_job(
        os.environ.get("ENDURO_SITE_URL", DEFAULT_URL),
        int(os.environ.get("ENDURO_SITE_PAGES", "724")),
        username=os.environ.get("ENDURO_SITE_USER", DEFAULT_USER),
        password=os.environ.get("ENDURO_SITE_PASSWORD", DEFAULT_PASSWORD),
        backend=os.environ.get("ENDURO_BACKEND") or "selenium",
    )
