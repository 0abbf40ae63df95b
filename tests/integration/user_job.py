"""A user's own job, as a user would write it, for ``enduro stress --job``.

It is not the reference job: its own waits, its own record shape and key, a
login without an ``is_logged_in`` hook. It reads a site the test serves at
``USER_SITE_URL`` (``USER_SITE_PAGES`` pages). ``USER_JOB_BUG`` plants a bug
the stress run must catch:

- ``swallow``: every exception is swallowed and the page returns no records
  (the classic ``except Exception: return []``);
- ``raise``: every page raises (a handler that cannot work at all).
"""

from __future__ import annotations

import os
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from enduro import Job, PageContext

BASE = os.environ.get("USER_SITE_URL", "http://127.0.0.1:8700").rstrip("/")
PAGES = int(os.environ.get("USER_SITE_PAGES", "30"))
BUG = os.environ.get("USER_JOB_BUG", "")
PASSWORD = "enduro-demo"

READ_ROWS_JS = """
return Array.from(document.querySelectorAll('#matches tr.match'), (tr) => ({
  id: tr.dataset.matchId,
  name: tr.querySelector('td[data-field=name]').textContent,
  cm: tr.querySelector('td[data-field=shared_cm]').textContent,
}));
"""


def scrape(ctx: PageContext) -> list[dict[str, Any]]:
    driver = ctx.driver
    driver.get(f"{BASE}/matches?page={ctx.key}")
    WebDriverWait(driver, 10).until(
        ec.any_of(
            ec.presence_of_element_located((By.CSS_SELECTOR, "body[data-state=ready]")),
            ec.presence_of_element_located((By.ID, "login-button")),
        )
    )
    if driver.find_elements(By.ID, "login-button"):
        raise RuntimeError(f"logged out on page {ctx.key}")
    rows = driver.execute_script(READ_ROWS_JS)
    return [{"id": r["id"], "name": r["name"], "cm": float(r["cm"])} for r in rows]


def extract(ctx: PageContext) -> list[dict[str, Any]]:
    if BUG == "raise":
        raise ValueError(f"page {ctx.key}: this handler cannot read anything")
    if BUG == "swallow":
        try:
            return scrape(ctx)
        except Exception:
            return []
    return scrape(ctx)


def login(ctx: PageContext) -> None:
    driver = ctx.driver
    driver.get(f"{BASE}/login")
    driver.find_element(By.ID, "username").send_keys("demo")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    WebDriverWait(driver, 10).until(lambda d: "/login" not in d.current_url)


job = Job(
    name="my-matches",
    pages=[f"{n}" for n in range(1, PAGES + 1)],
    handler=extract,
    login=login,
    record_key="id",
    secrets=(PASSWORD,),
)
