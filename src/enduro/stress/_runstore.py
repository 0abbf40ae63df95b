"""The store a stress run writes: a SQLite file in the report directory, or, for
runners that share one, a throwaway PostgreSQL server the tester starts.

A shared store's rows are copied into the report directory's SQLite file when
the run ends, so a run is judged, and can be judged again, from its directory
alone. See ARCHITECTURE.md, "Monitor, stress tester, report".
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from enduro.session import process_alive
from enduro.store import Store, copy_store
from enduro.stress._postgres import PostgresServer

__all__ = ["DATABASE", "RunStore"]

log = logging.getLogger(__name__)

DATABASE = "stress"
"""The database of the tester's PostgreSQL server that holds a shared-store run."""


class RunStore:
    """The run's store, as the tester and its runners reach it.

    Args:
        path: the report directory's SQLite store (the one judged).
        shared: whether the runners share a PostgreSQL server instead.
    """

    def __init__(self, path: Path, *, shared: bool) -> None:
        self.path = path
        self._want_shared = shared
        self.database: PostgresServer | None = None
        """The shared store's server, while it runs (None: a SQLite store)."""
        self._shared: Store | None = None  # the tester's own connection to it

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """For a shared store: a PostgreSQL server of the tester's own, up for the run;
        then every row copied into the SQLite store, and the server removed. Nothing
        to do for a SQLite store."""
        if not self._want_shared:
            yield
            return
        server = PostgresServer()
        try:
            server.start()
            server.new_database(DATABASE)
            self.database = server
            self._shared = Store.open(server.url(DATABASE))
            yield
        finally:
            try:
                if self._shared is not None:
                    self._copy_out(self._shared)
            finally:
                if self._shared is not None:
                    self._shared.close()
                self._shared = self.database = None
                server.close()

    def _copy_out(self, shared: Store) -> None:
        """Copy the shared store into the SQLite store. The runners are all gone by
        now: a run still marked running died without saying so."""
        if self.database is not None and not self.database.running():
            self.database.start()  # stopped by a restart the run's end cut short
        for run in shared.running_runs():
            if not process_alive(run.pid, run.pid_create_time):
                shared.mark_run_dead(run.run_id)
        _, copied = copy_store(shared, self.path)
        log.info("shared store copied into %s: %s", self.path, copied)

    def target(self) -> Path | str:
        """What the runners are given: the SQLite file, or the shared store's URL
        without its password (they find it in ``PGPASSWORD``)."""
        if self.database is None:
            return self.path
        return self.database.url(DATABASE, password="")

    def exists(self) -> bool:
        """Whether there is a store to look at yet (a runner creates the SQLite one)."""
        return self._shared is not None or self.path.exists()

    def reader(self) -> Store:
        """The run's store opened read only (the dashboard's), as the runners see it.

        Raises:
            StoreError: there is no store yet (its first runner makes it).
        """
        if self.database is not None:
            return Store.open(self.database.url(DATABASE), read_only=True)
        return Store.open(self.path, read_only=True)

    @contextlib.contextmanager
    def look(self) -> Iterator[Store]:
        """The run's store, for a look while the run goes on."""
        if self._shared is not None:
            yield self._shared
            return
        with Store.open(self.path, create=False) as store:
            yield store
