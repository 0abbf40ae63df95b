"""The loop: claim a page, make sure the browser is fit, run the handler, commit.

::

    limiter.acquire() -> store.claim() -> manager.ready() -> job.handler(ctx) -> store.complete()
                                              ^                    |
                                              |                  error
                                              |                    v
                      restart / re-login / cool down  <-  policies.decide(classify(exc, signals))

One worker = one browser session = one loop. Every piece of state that must
survive a crash lives in the store; the runner holds only counters for the
progress display.

:class:`Runner` (``_run``) supervises a run: its workers, signals, heartbeat,
stall watch and the monitor's alerts. :class:`PageWorker` (``_page``) takes one
page from claim to commit, or through classification to the policy's
recovery. :class:`RunEvents` (``_events``) is the run's event stream; the store
is its first listener. Every couple of seconds the run writes what each worker
is doing into the store (``_live``, job state ``LIVE_STATE_PREFIX`` + run id),
for the dashboard.

A hybrid job (``Job.site``) gives each worker's handler ``ctx.http`` too; its
per-endpoint limiters and request counts are the run's, saved in the store.
A job whose ``pages`` is a function has them found first: the first worker's
browser logs in and the function's keys are seeded before any page starts.
See ARCHITECTURE.md, "The runner".
"""

from enduro.runner._events import RunEvent, RunEvents, store_listener
from enduro.runner._live import LIVE_STATE_PREFIX
from enduro.runner._page import DISCOVERY_KEY, PageSession, PageWorker
from enduro.runner._run import Runner
from enduro.runner._state import Progress, RunControl, RunResult

__all__ = [
    "DISCOVERY_KEY",
    "LIVE_STATE_PREFIX",
    "PageSession",
    "PageWorker",
    "Progress",
    "RunControl",
    "RunEvent",
    "RunEvents",
    "RunResult",
    "Runner",
    "store_listener",
]
