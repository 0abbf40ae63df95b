"""The Job API: what to do, without any knowledge of storage or recovery.

A job names its pages, a handler that turns one page into records, and
optional ``login`` / ``is_logged_in`` hooks::

    from enduro import Job, PageContext

    def extract(ctx: PageContext) -> list[dict]:
        ctx.driver.get(f"{BASE}/matches?page={ctx.key}")
        return ctx.driver.execute_script("return collectRows()")

    job = Job(name="matches", pages=range(1, 725), handler=extract,
              login=do_login, is_logged_in=check_login, record_key="match_id")

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
from typing import Any

from enduro.errors import JobLoadError

__all__ = ["Handler", "Hook", "Job", "PageContext", "Record", "load_job"]

Record = dict[str, Any]


@dataclass
class PageContext:
    """What a handler (or a login hook) is given for one page.

    Attributes:
        key: the page key, as a string (``range(1, 725)`` gives ``"1"`` … ``"724"``).
        driver: the live Selenium WebDriver of this worker's browser session.
        attempt: 1 on the first try of this page, 2 on the first retry, …
        job: the job being run.
        log: a logger for the handler's own messages.
    """

    key: str
    driver: Any
    attempt: int
    job: Job
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("enduro.handler"))


Handler = Callable[[PageContext], "list[Record]"]
Hook = Callable[[PageContext], Any]

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass
class Job:
    """A page-by-page job.

    Args:
        name: identifies the job's pages and records in the store.
        pages: the page keys, in the order to visit them (kept as strings).
        handler: turns one page into a list of JSON-serialisable records.
        record_key: the field that makes a record unique within the job.
        login: logs the browser in; called after a fresh browser starts and
            when the site is found logged out.
        is_logged_in: tells whether the browser is logged in.
        secrets: strings (passwords, tokens) that must never be written
            anywhere: enduro redacts them from error messages, events and
            flight-recorder files.
    """

    name: str
    pages: Iterable[object]
    handler: Handler
    record_key: str = "id"
    login: Hook | None = None
    is_logged_in: Callable[[PageContext], bool] | None = None
    secrets: Sequence[str] = ()
    _keys: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"job name {self.name!r} must be 1-100 of [A-Za-z0-9_.-]")
        if not callable(self.handler):
            raise TypeError("job handler must be callable")
        self._keys = [str(page) for page in self.pages]
        if len(set(self._keys)) != len(self._keys):
            raise ValueError(f"job {self.name!r} lists a page key more than once")
        if isinstance(self.secrets, str):
            raise TypeError("job secrets must be a list of strings, not one string")
        self.secrets = tuple(s for s in self.secrets if s)

    @property
    def page_keys(self) -> list[str]:
        """The page keys as strings, in visiting order."""
        return list(self._keys)


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
