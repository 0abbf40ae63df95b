"""What a store does, by role, and the one class that combines them.

Each role is an abstract class: the page queue, the records, the run
registry (runs and the processes they started), the event log, the resource
samples and what a job learned. Parts of enduro that need only one role say
so in their types (the monitor needs :class:`SampleLog`, the reaper
:class:`RunRegistry`); :class:`Store` is all of them, and a backend (today
:class:`~enduro.store.SQLiteStore`) implements it. ``tests/store/conformance``
is the suite every backend must pass. See ARCHITECTURE.md, "The store".

The one promise, whatever the backend: a page's records and its ``done`` mark
commit in one transaction, and a page processed again replaces its records.
A claim never leases a page another claim holds, even with many writers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from enduro.errors import StoreError
from enduro.store._rows import ClaimedPage, Clock, ProcessRow, RunRow, prepare_records

__all__ = [
    "EventLog",
    "JobState",
    "PageQueue",
    "RecordStore",
    "RunRegistry",
    "SampleLog",
    "Store",
    "StoreOpener",
    "register_backend",
]


class StoreOpener(Protocol):
    """How a backend opens a store from a path or URL (see :meth:`Store.open`)."""

    def __call__(
        self, target: str | Path, *, create: bool, clock: Clock | None, read_only: bool = False
    ) -> Store: ...


# URL scheme -> opener. Filled once, when ``enduro.store`` is imported (its
# ``__init__`` registers the backends it ships); read by Store.open.
_BACKENDS: dict[str, StoreOpener] = {}


def register_backend(scheme: str, opener: StoreOpener) -> None:
    """Let :meth:`Store.open` open ``scheme://`` URLs with ``opener``."""
    _BACKENDS[scheme.lower()] = opener


class PageQueue(ABC):
    """The job's pages: seeded, leased to workers, done, failed, put back."""

    @abstractmethod
    def seed_pages(self, job: str, keys: Sequence[str]) -> int:
        """Add the job's pages that the store does not know yet, after its last
        page; keys it knows are left as they are (safe with concurrent seeders).

        Returns:
            How many pages were added.
        """

    @abstractmethod
    def claim_many(
        self, job: str, owner: str, lease_seconds: float, limit: int
    ) -> list[ClaimedPage]:
        """Lease up to ``limit`` pending pages whose retry time has come, in page
        order. A page is leased to one claimer only, however many claim at once."""

    def claim(self, job: str, owner: str, lease_seconds: float) -> ClaimedPage | None:
        """Lease the next pending page whose retry time has come, or None."""
        pages = self.claim_many(job, owner, lease_seconds, 1)
        return pages[0] if pages else None

    @abstractmethod
    def next_retry_at(self, job: str) -> float | None:
        """When the earliest waiting (pending) page may be claimed; None if none wait."""

    def complete(
        self, page: ClaimedPage, owner: str, records: Iterable[dict[str, Any]], record_key: str
    ) -> bool:
        """Store a page's records and mark it done, in one transaction.

        Records the page stored before are replaced. A record whose key another
        page stored moves to this page (keys are unique within the job).

        Returns:
            False if the page's lease was lost (nothing is written then).

        Raises:
            BadRecords: a record is not a dict, lacks ``record_key``, or is not
                JSON-serialisable (nothing is written then).
        """
        return self.complete_rows(page, owner, prepare_records(page, records, record_key))

    @abstractmethod
    def complete_rows(
        self,
        page: ClaimedPage,
        owner: str,
        rows: list[dict[str, Any]],
        new_pages: Sequence[str] = (),
        *,
        turn_at: float | None = None,
        took: float | None = None,
    ) -> bool:
        """:meth:`complete` with records already checked by :func:`prepare_records`.

        Args:
            new_pages: page keys the handler found (``ctx.enqueue``): added in the
                same transaction, after the job's other pages; keys the store
                already knows are left as they are.
            turn_at: when the attempt took its turn of the pace (store time), kept
                in its ``page_done`` event: a request of it that reached the site
                inside a Retry-After window another runner was told about had
                been on its way since then.
            took: the attempt's seconds, claim to records (the dashboard's page
                latency), kept in its ``page_done`` event.
        """

    @abstractmethod
    def fail_attempt(
        self,
        page: ClaimedPage,
        owner: str,
        error: str,
        retry_at: float | None,
        *,
        charge: str = "page",
    ) -> bool:
        """Charge the page for a failure; back to pending at ``retry_at``, or failed if None.

        Args:
            charge: ``page`` counts an attempt (an error about the page),
                ``infra`` a recovery (the browser, the network, the site's limits).

        Returns:
            False if the lease was lost.
        """

    @abstractmethod
    def release(self, page: ClaimedPage, owner: str) -> None:
        """Give a leased page back without charging an attempt."""

    @abstractmethod
    def reclaim_expired_leases(self, job: str) -> int:
        """Put back pages whose lease ran out (their owner stopped renewing)."""

    @abstractmethod
    def requeue(self, job: str | None, *, failed: bool = False, keys: Sequence[str] = ()) -> int:
        """Put failed pages (``failed=True``) or the named pages back to pending.

        Attempts start again from zero. Returns how many pages moved.
        """

    @abstractmethod
    def jobs(self) -> list[str]:
        """The jobs this store holds pages of."""

    @abstractmethod
    def page_counts(self, job: str | None = None) -> dict[str, int]:
        """Pages by status, plus ``total``."""

    @abstractmethod
    def failed_pages(self, job: str | None = None) -> list[tuple[str, str, str]]:
        """(job, key, last_error) of failed pages, in page order."""

    @abstractmethod
    def page_status(self, job: str, key: str) -> dict[str, Any] | None:
        """The row of one page, as a dict."""

    @abstractmethod
    def done_at(self, job: str) -> dict[str, float]:
        """When each done page of ``job`` was completed, by page key."""


class RecordStore(ABC):
    """The records the pages produced (written by :meth:`PageQueue.complete_rows`)."""

    @abstractmethod
    def record_count(self, job: str | None = None) -> int:
        """How many records are stored."""

    @abstractmethod
    def records_per_page(self, job: str) -> dict[str, int]:
        """How many records each page of ``job`` holds (pages with none left out)."""

    @abstractmethod
    def iter_record_texts(self, job: str | None = None) -> Iterator[str]:
        """Records as canonical JSON text, in page order then position."""

    @abstractmethod
    def page_records(self, job: str, page_key: str, limit: int = 50) -> list[dict[str, Any]]:
        """The first ``limit`` records of one page, in their order on it."""


class RunRegistry(ABC):
    """Runs (started, beating, ended, found dead) and the processes they started."""

    @abstractmethod
    def begin_run(self, run_id: str, job: str, host: str, pid: int, pid_create_time: float) -> None:
        """Record that a run has started."""

    @abstractmethod
    def heartbeat(self, run_id: str, lease_seconds: float) -> None:
        """Show that the run is alive and extend the leases of its pages."""

    @abstractmethod
    def end_run(self, run_id: str, status: str, exit_code: int | None) -> None:
        """Record how a run ended, and put any page it still leases back to pending."""

    @abstractmethod
    def runs(self, status: str | None = None) -> list[RunRow]:
        """Runs in the order they started, optionally only those with ``status``."""

    def running_runs(self) -> list[RunRow]:
        """Runs still marked ``running`` (alive, or dead without saying so)."""
        return self.runs(status="running")

    @abstractmethod
    def mark_run_dead(self, run_id: str, killed: int = 0) -> int | None:
        """Mark a running run dead, put the pages it had leased back to pending and
        log its ``run_dead`` event (``killed``: how many of its processes the caller
        killed), all in one transaction: a reaper killed half-way leaves neither.

        A page in the hands of a killed runner is not charged an attempt: the
        runner's death says nothing about the page.

        Returns:
            How many leased pages went back to pending; None when the run was not
            running (another runner marked it first, or it ended).
        """

    @abstractmethod
    def register_process(
        self,
        run_id: str,
        kind: str,
        pid: int,
        create_time: float,
        pgid: int | None,
        workdir: str | None,
    ) -> int:
        """Record a browser or driver process a run started; returns its row id."""

    @abstractmethod
    def end_processes(self, ids: Iterable[int]) -> None:
        """Mark processes as ended (killed or quit)."""

    @abstractmethod
    def open_processes(self, run_id: str | None = None) -> list[ProcessRow]:
        """Processes not yet marked ended, of one run or of all runs."""

    @abstractmethod
    def all_processes(self) -> list[ProcessRow]:
        """Every process ever registered (for tests and audits)."""


class EventLog(ABC):
    """What happened, in order: starts, errors, restarts, logins, alerts, ..."""

    @abstractmethod
    def add_event(
        self,
        kind: str,
        message: str = "",
        *,
        run_id: str | None = None,
        job: str | None = None,
        category: str | None = None,
        page_key: str | None = None,
        data: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> None:
        """Append an event (browser start/restart, error, resume, …); ``ts``: when it
        happened, if not now."""

    @abstractmethod
    def events(self, job: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """Events in order, optionally of one job and kind."""

    @abstractmethod
    def events_after(self, after_id: int = 0, *, limit: int = 1000) -> list[dict[str, Any]]:
        """At most ``limit`` events of every job whose ``id`` is above ``after_id``, in
        order: what a reader following the log has not seen yet."""

    @abstractmethod
    def event_counts(self, job: str | None = None) -> dict[str, int]:
        """Events by kind."""

    @abstractmethod
    def error_counts(self, job: str | None = None) -> dict[str, int]:
        """Error events by category."""

    @abstractmethod
    def top_errors(self, job: str | None = None) -> dict[str, dict[str, Any]]:
        """Per category of error events, its most frequent message's first line:
        ``{"message", "count", "page", "errors"}`` (``count`` of that line, ``page``
        an example page with it, ``errors`` every error of the category)."""

    @abstractmethod
    def open_alerts(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Alerts whose latest change is ``open``, of one run or of the runs still running."""


class SampleLog(ABC):
    """The resource monitor's samples."""

    @abstractmethod
    def add_sample(self, run_id: str, ts: float, pages: int, data: dict[str, Any]) -> None:
        """Store one resource sample of a run."""

    @abstractmethod
    def samples(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Resource samples in time order (of one run, or of all)."""

    @abstractmethod
    def samples_after(self, after_id: int = 0, *, limit: int = 1000) -> list[dict[str, Any]]:
        """At most ``limit`` samples of every run whose ``id`` is above ``after_id``, in
        order, each with its ``id``, ``run_id``, ``ts`` and ``pages``."""

    @abstractmethod
    def latest_sample(self) -> dict[str, Any] | None:
        """The most recent resource sample in the store."""


class JobState(ABC):
    """What a job learned for its next runs (the site's rate, ...), request
    counts, and the pace every runner of the job keeps to (one rate and one
    Retry-After window for all of them)."""

    @abstractmethod
    def get_state(self, job: str, key: str) -> str | None:
        """A value a previous run of ``job`` saved under ``key`` (None if none)."""

    @abstractmethod
    def set_state(self, job: str, key: str, value: str) -> None:
        """Save ``value`` under ``key`` for the next runs of ``job``."""

    @abstractmethod
    def states(self, job: str, prefix: str = "") -> dict[str, str]:
        """Every value saved for ``job`` under a key starting with ``prefix``."""

    @abstractmethod
    def save_http_stats(self, run_id: str, job: str, snapshot: dict[str, dict[str, Any]]) -> None:
        """Save a run's per-endpoint request counts (replacing what the run saved before)."""

    @abstractmethod
    def http_stats(self, job: str | None = None) -> list[dict[str, dict[str, Any]]]:
        """The saved snapshots, one per run (``{endpoint: counts}``), oldest run first."""

    @abstractmethod
    def take_turn(self, job: str, key: str, min_interval: float = 0.0) -> tuple[float, float]:
        """Reserve the next send of ``key`` (``"pages"``, ``"http:<endpoint>"``)
        among every runner of the job, in one atomic step: it goes after every
        hold and one interval (never less than ``min_interval``: the caller's
        ceiling on the rate) after the send reserved before it.

        Returns:
            (seconds from now until the reserved moment, the shared interval
            between sends in seconds, 0 when unlimited).
        """

    @abstractmethod
    def peek_pace(self, job: str, key: str) -> tuple[float, float] | None:
        """Read the pace of ``key`` without reserving anything, as a turn taken
        now would find it: a change another runner is storing is waited for.

        Returns:
            (seconds from now until a send could go — after the hold and the
            send reserved last —, the shared interval between sends; 0:
            unlimited), or None while nothing is kept for ``key`` (a turn makes
            the row that later changes are waited for on).
        """

    @abstractmethod
    def hold_left(self, job: str, key: str) -> float:
        """Seconds until the shared hold of ``key`` ends (0: none in force)."""

    @abstractmethod
    def set_pace(
        self,
        job: str,
        key: str,
        *,
        interval: float | None = None,
        only_slower: bool = False,
        hold_for: float | None = None,
    ) -> None:
        """Change the shared pace of ``key``: its ``interval`` between sends
        (``only_slower``: unless it already is longer — two runners cutting
        for one burst cut once), and a hold of ``hold_for`` seconds from now
        during which no runner sends (only ever extended)."""


class Store(PageQueue, RecordStore, RunRegistry, EventLog, SampleLog, JobState):
    """A whole store: every role, and its lifecycle (a context manager, safe to
    close twice, refusing work once closed).

    :meth:`open` picks the backend from what it is given.
    """

    location: str
    """Where the store is, for people (a path; a server's URL without its password)."""

    flight_dir: Path
    """Where the flight recorder writes the captures of this store's runs (on
    this host)."""

    disk_dir: Path
    """A directory on the disk this store's runs write to (the monitor watches
    its free space)."""

    serves_hosts: bool = False
    """Whether runners on other hosts share this store (a database server), so
    what must hold across runners — every ``ctx.http`` endpoint's pace too, not
    only the pages' — is kept in it."""

    @abstractmethod
    def now(self) -> float:
        """The store's time, in epoch seconds: leases, retry times, heartbeats and
        events are on it. A shared store's is the database server's, so every
        runner on every host agrees on it."""

    @classmethod
    def open(
        cls,
        target: str | Path,
        *,
        create: bool = True,
        clock: Clock | None = None,
        read_only: bool = False,
    ) -> Store:
        """Open (and if needed create) the store at ``target``: a file path, or a
        URL whose scheme names a backend (``sqlite:///path``).

        ``read_only`` opens an existing store for reading only (the dashboard): the
        database refuses every write, and a reader never holds up a runner's
        writes (SQLite: WAL readers, no write lock taken).

        Raises:
            StoreError: the target is unusable, not an enduro store, or made by
                a newer enduro, or its scheme names no backend; nothing is
                written then.
        """
        text = str(target)
        scheme = text.split("://", 1)[0].split("+", 1)[0].lower() if "://" in text else "sqlite"
        opener = _BACKENDS.get(scheme)
        if opener is None:
            raise StoreError(
                f"no store backend for {scheme}:// (in {text!r})",
                f"give a file path or one of: {', '.join(f'{k}://' for k in sorted(_BACKENDS))}",
            )
        if read_only:
            return opener(target, create=False, clock=clock, read_only=True)
        return opener(target, create=create, clock=clock)

    @abstractmethod
    def close(self) -> None:
        """Release the database; safe to call twice."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
