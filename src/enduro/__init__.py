"""enduro: make long browser-automation jobs finish.

The Job API (:class:`Job`, :class:`PageContext`) says what to do; the
:class:`Runner` does it against a :class:`Store`, configured by
:class:`Settings`. A hybrid job's handler also gets ``ctx.http`` (see
:func:`csrf_header` for the usual CSRF header).
"""

from enduro.job import Job, PageContext, load_job
from enduro.runner import Progress, Runner, RunResult
from enduro.session import csrf_header
from enduro.settings import Settings
from enduro.store import Store

__all__ = [
    "Job",
    "PageContext",
    "Progress",
    "RunResult",
    "Runner",
    "Settings",
    "Store",
    "csrf_header",
    "load_job",
]
