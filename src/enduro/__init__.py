"""enduro: make long browser-automation jobs finish.

The Job API (:class:`Job`, :class:`PageContext`) says what to do; the
:class:`Runner` does it against a :class:`Store`, configured by
:class:`Settings`.
"""

from enduro.job import Job, PageContext, load_job
from enduro.runner import Progress, Runner, RunResult
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
    "load_job",
]
