"""The Job API: what to do, without any knowledge of storage or recovery.

A job names its pages, a handler that turns one page into records, and
optional ``login`` / ``is_logged_in`` hooks::

    from enduro import Job, PageContext

    def extract(ctx: PageContext) -> list[dict]:
        ctx.driver.get(f"{BASE}/matches?page={ctx.key}")
        return ctx.driver.execute_script("return collectRows()")

    job = Job(name="matches", pages=range(1, 725), handler=extract,
              login=do_login, is_logged_in=check_login, record_key="match_id")

A hybrid job names its ``site``: the browser logs in, and the handler calls
the site's JSON API through ``ctx.http``, which carries the browser's cookies
(and the header ``prepare_request`` adds, a CSRF token say)::

    def extract(ctx: PageContext) -> list[dict]:
        answer = ctx.http.get_json("/api/v2/matches", params={"currentPage": ctx.key})
        return answer["matches"]

    job = Job(name="matches", pages=range(1, 725), handler=extract, login=do_login,
              site="https://www.example.com", prepare_request=csrf_header("csrftoken"))

``pages`` may also be a function, called once per run after the first login
with a context (``ctx.http`` included), that returns the keys; and a handler
may add pages with ``ctx.enqueue(keys)``, stored with its records.

Jobs are loaded from ``path/file.py[:name]`` or ``module:name``; the named
attribute may be a :class:`Job` or a callable without arguments returning one.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from enduro.errors import Fatal, JobLoadError

if TYPE_CHECKING:
    import httpx

    from enduro.session import HttpClient

__all__ = [
    "Handler",
    "Hook",
    "Job",
    "PageContext",
    "PageSource",
    "PrepareRequest",
    "Record",
    "load_job",
]

Record = dict[str, Any]


@dataclass
class PageContext:
    """What a handler (or a login hook) is given for one page.

    Attributes:
        key: the page key, as a string (``range(1, 725)`` gives ``"1"`` … ``"724"``).
        driver: what this worker's browser backend gives the handler — with the
            default local backend (``enduro.session.BrowserSession``), the live
            Selenium WebDriver of Debian's Chromium (``execute_cdp_cmd`` works); a
            backend's ``driver`` property says what it gives. Don't quit it or
            close its window: enduro restarts, kills and replaces the browser.
        page: with the Playwright backend, the live Playwright ``Page`` of the
            worker's browser (and ``driver`` says to use it); with Selenium, the
            other way round. Same rules: don't close it.
        attempt: 1 on the first try of this page, 2 on the first retry, …
        job: the job being run.
        log: a logger for the handler's own messages.
    """

    key: str
    driver: Any
    attempt: int
    job: Job
    page: Any = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("enduro.handler"))
    client: HttpClient | None = field(default=None, repr=False)
    enqueued: list[str] | None = field(default=None, repr=False)
    """Keys the handler added with :meth:`enqueue` (None: this context can't add pages)."""

    @property
    def http(self) -> HttpClient:
        """The HTTP client bound to this worker's browser session (hybrid jobs).

        Raises:
            Fatal: the job names no ``site`` for it to carry the cookies of.
        """
        if self.client is None:
            raise Fatal(
                f"job {self.job.name!r} uses ctx.http but names no site: "
                "give Job(site='https://...'), the site whose cookies it carries"
            )
        return self.client

    def enqueue(self, keys: Iterable[object]) -> None:
        """Add pages to the job (stored with this page's records, in one transaction).

        Keys the store already knows are left as they are: a page is never added twice.

        Raises:
            RuntimeError: outside a handler (a login hook can't add pages).
        """
        if self.enqueued is None:
            raise RuntimeError("ctx.enqueue works in a handler or in Job.pages, not here")
        if isinstance(keys, str | bytes):
            raise TypeError("ctx.enqueue takes a list of keys, not one string")
        for key in keys:
            text = str(key)
            if not text:
                raise ValueError("ctx.enqueue: a page key can't be empty")
            self.enqueued.append(text)


Handler = Callable[[PageContext], "list[Record]"]
Hook = Callable[[PageContext], Any]
PageSource = Callable[[PageContext], Iterable[object]]
"""``Job.pages`` as a function: called after the first login, returns the keys."""
PrepareRequest = Callable[["httpx.Request", dict[str, str]], None]
"""Prepares each ``ctx.http`` request: given the request and the site's cookies
(name -> value), sets headers (a CSRF token, say). See :func:`enduro.csrf_header`."""

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass
class Job:
    """A page-by-page job.

    Args:
        name: identifies the job's pages and records in the store.
        pages: the page keys, in the order to visit them (kept as strings); or a
            function called once per run after the first login with a context,
            returning them (keys the store already has are kept as they are).
        handler: turns one page into a list of JSON-serialisable records.
        record_key: the field that makes a record unique within the job.
        login: logs the browser in; called after a fresh browser starts and
            when the site is found logged out.
        is_logged_in: tells whether the browser is logged in.
        secrets: strings (passwords, tokens) that must never be written
            anywhere: enduro redacts them from error messages, events and
            flight-recorder files.
        site: the site's origin (``https://host[:port]``) for ``ctx.http``: the
            browser's cookies for it are carried, and sent nowhere else.
        prepare_request: called on every ``ctx.http`` request before it goes out
            (typically :func:`enduro.csrf_header`).
        backend: the browser backend the handler is written for, ``"selenium"``
            (``ctx.driver``) or ``"playwright"`` (``ctx.page``); None: either (the
            run's ``--backend``, Selenium by default). A run asking for the other
            one is refused.
    """

    name: str
    pages: Iterable[object] | PageSource
    handler: Handler
    record_key: str = "id"
    login: Hook | None = None
    is_logged_in: Callable[[PageContext], bool] | None = None
    secrets: Sequence[str] = ()
    site: str | None = None
    prepare_request: PrepareRequest | None = None
    backend: str | None = None
    _keys: list[str] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"job name {self.name!r} must be 1-100 of [A-Za-z0-9_.-]")
        if not callable(self.handler):
            raise TypeError("job handler must be callable")
        self._keys = None if callable(self.pages) else unique_keys(self.pages, self.name)
        if isinstance(self.secrets, str):
            raise TypeError("job secrets must be a list of strings, not one string")
        self.secrets = tuple(s for s in self.secrets if s)
        if self.site is not None:
            self.site = _origin(self.site)
        if self.backend is not None and self.backend not in ("selenium", "playwright"):
            raise ValueError(
                f"job backend {self.backend!r} must be 'selenium' or 'playwright' (or None)"
            )
        if self.prepare_request is not None and not callable(self.prepare_request):
            raise TypeError("job prepare_request must be callable")

    @property
    def discovers_pages(self) -> bool:
        """Whether the page keys come from a function called at run time."""
        return self._keys is None

    @property
    def page_keys(self) -> list[str]:
        """The page keys as strings, in visiting order.

        Raises:
            TypeError: the job finds its pages at run time (``pages`` is a function).
        """
        if self._keys is None:
            raise TypeError(f"job {self.name!r} finds its pages at run time (pages is a function)")
        return list(self._keys)


def unique_keys(pages: Iterable[object], job: str) -> list[str]:
    """Page keys as strings, refusing a key listed twice.

    Raises:
        ValueError: a key appears more than once.
    """
    keys = [str(page) for page in pages]
    if len(set(keys)) != len(keys):
        raise ValueError(f"job {job!r} lists a page key more than once")
    return keys


def _origin(site: str) -> str:
    """``scheme://host[:port]`` of a site URL, without a trailing slash.

    Raises:
        ValueError: not an http(s) URL with a host, or one with a path.
    """
    parts = urlsplit(site)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"job site {site!r} must be an http(s) URL such as https://example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"job site {site!r} must be an origin, without a path: {parts.netloc}")
    return f"{parts.scheme}://{parts.netloc}"


def load_job(ref: str) -> Job:
    """Load a job from ``path/file.py[:name]`` or ``module:name``.

    Without ``:name`` a file must define exactly one :class:`Job` (or a
    variable called ``job``).

    Raises:
        JobLoadError: the file or module is missing, fails to import, or gives no Job.
    """
    target, _, name = ref.partition(":")
    if target.endswith(".py") or "/" in target or Path(target).suffix == ".py":
        module = _import_file(Path(target), ref)
    else:
        if not name:
            raise JobLoadError(
                f"job {ref!r} names a module without a job",
                "write it as module:name, or give a path/file.py",
            )
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise JobLoadError(
                f"can't import job module {target!r}: {exc}", "check the module name and PATH"
            ) from exc
    return _pick_job(module, name, ref)


def _import_file(path: Path, ref: str) -> Any:
    if not path.is_file():
        raise JobLoadError(
            f"job file {str(path)!r} not found", "pass path/file.py[:name] or module:name"
        )
    module_name = f"enduro_job_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise JobLoadError(f"can't load {str(path)!r} as Python", "give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise JobLoadError(
            f"job file {str(path)!r} failed to import: {type(exc).__name__}: {exc}",
            "run it with python to see the traceback",
        ) from exc
    return module


def _pick_job(module: Any, name: str, ref: str) -> Job:
    if name:
        if not hasattr(module, name):
            raise JobLoadError(f"{ref!r} has no attribute {name!r}", "check the name after ':'")
        candidate = getattr(module, name)
    else:
        jobs = {k: v for k, v in vars(module).items() if isinstance(v, Job)}
        if "job" in jobs:
            candidate = jobs["job"]
        elif len(jobs) == 1:
            candidate = next(iter(jobs.values()))
        elif not jobs:
            raise JobLoadError(
                f"no Job found in {ref!r}", "define job = Job(...) or pass file.py:name"
            )
        else:
            raise JobLoadError(
                f"{ref!r} defines several jobs ({', '.join(sorted(jobs))})",
                "pick one with file.py:name",
            )
    if callable(candidate) and not isinstance(candidate, Job):
        try:
            candidate = candidate()
        except Exception as exc:
            raise JobLoadError(
                f"job factory {ref!r} failed: {type(exc).__name__}: {exc}",
                "call it with python to see the traceback",
            ) from exc
    if not isinstance(candidate, Job):
        raise JobLoadError(
            f"{ref!r} is a {type(candidate).__name__}, not an enduro Job",
            "point it at a Job or a function returning one",
        )
    return candidate
