"""What only the SQLite backend does: WAL files, refusing files that are not
stores without writing to them, upgrading old files, ``sqlite:///`` URLs."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from enduro.errors import StoreError
from enduro.store import Store
from enduro.store._schema import SCHEMA_VERSION
from tests.store._helpers import JOB, FakeClock, claim, records, status


@pytest.fixture
def store(store_path: Path, clock: FakeClock) -> Iterator[Store]:
    """A SQLite store only (the conformance suite's ``store`` is every backend)."""
    with Store.open(store_path, clock=clock) as opened:
        yield opened


def test_store_runs_in_wal_mode(store_path: Path) -> None:
    with Store.open(store_path) as store:
        store.seed_pages(JOB, ["1"])

    conn = sqlite3.connect(store_path)
    try:
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    finally:
        conn.close()
    assert mode == "wal"


def _snapshot(path: Path) -> tuple[str, int, list[str]]:
    """Bytes, mtime and the directory listing: everything a refusal must leave alone."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return digest, path.stat().st_mtime_ns, sorted(p.name for p in path.parent.iterdir())


def _make_directory(path: Path) -> None:
    path.mkdir()


def _make_text_file(path: Path) -> None:
    path.write_text("name,score\nJosé,1\n", encoding="utf-8")


def _make_foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO contacts (name) VALUES ('Zoë')")
    conn.commit()
    conn.close()


def _make_newer_store(path: Path) -> None:
    with Store.open(path) as store:
        store.seed_pages(JOB, ["1", "2"])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE enduro_meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    # Closing the last connection checkpoints the WAL and removes -wal/-shm.
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        pytest.param(_make_directory, "directory", id="directory"),
        pytest.param(_make_text_file, "not an enduro store", id="text-file"),
        pytest.param(_make_foreign_sqlite, "not an enduro store", id="foreign-sqlite"),
        pytest.param(_make_newer_store, "newer", id="newer-schema"),
    ],
)
def test_open_refuses_without_writing(tmp_path: Path, make: object, words: str) -> None:
    folder = tmp_path / "here"
    folder.mkdir()
    path = folder / "target.db"
    make(path)  # type: ignore[operator]
    before = _snapshot(path)

    with pytest.raises(StoreError, match=words) as info:
        Store.open(path)

    assert str(path) in info.value.message
    after = _snapshot(path)
    assert after[0] == before[0], "the file's bytes changed"
    assert after[1] == before[1], "the file's mtime changed"
    assert after[2] == before[2], "files appeared next to it (-wal/-shm?)"


def test_open_without_create_refuses_a_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"

    with pytest.raises(StoreError, match="no store"):
        Store.open(path, create=False)

    assert list(tmp_path.iterdir()) == []


def test_complete_is_one_transaction(store: Store, store_path: Path) -> None:
    """A failure while inserting records rolls back the done mark and the deletion."""
    store.seed_pages(JOB, ["1"])
    page = claim(store)
    assert store.complete(page, "run-a", [{"id": "old"}], "id")
    store.requeue(JOB, keys=["1"])
    page = claim(store)
    conn = sqlite3.connect(store_path)
    conn.execute(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON records WHEN NEW.record_key = 'boom' "
        "BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
    )
    conn.commit()
    conn.close()

    with pytest.raises(DBAPIError, match="boom refused"):
        store.complete(page, "run-a", [{"id": "new"}, {"id": "boom"}], "id")

    row = status(store, "1")
    assert row["status"] == "leased"
    assert row["lease_owner"] == "run-a"
    assert records(store) == [{"id": "old"}]


def test_a_version_2_store_gains_recoveries_and_keeps_its_pages(store_path: Path) -> None:
    with Store.open(store_path) as store:
        store.seed_pages(JOB, ["1", "2"])
        assert store.complete(claim(store), "run-a", [{"id": "a"}], "id")
    conn = sqlite3.connect(store_path)
    with conn:  # make it look like a store written by the previous enduro
        conn.execute("DROP TABLE job_state")
        conn.execute("DROP TABLE http_stats")
        conn.execute("ALTER TABLE pages DROP COLUMN recoveries")
        conn.execute("UPDATE enduro_meta SET value = '2' WHERE key = 'schema_version'")
    conn.close()
    with Store.open(store_path, create=False) as store:
        assert status(store, "1")["status"] == "done"
        page = claim(store)
        assert (page.key, page.recoveries) == ("2", 0)
        assert store.fail_attempt(page, "run-a", "tab crashed", 0.0, charge="infra")
        assert status(store, "2")["recoveries"] == 1
        store.set_state(JOB, "rate", "2")
    conn = sqlite3.connect(store_path)
    version = conn.execute("SELECT value FROM enduro_meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    assert version == (str(SCHEMA_VERSION),)
    with Store.open(store_path, create=False) as store:  # the tables of later versions too
        store.save_http_stats("run-a", JOB, {"/x": {"requests": 1}})
        assert store.http_stats(JOB) == [{"/x": {"requests": 1}}]


def test_a_sqlite_url_and_a_path_open_the_same_file(store_path: Path) -> None:
    with Store.open(f"sqlite:///{store_path}") as store:
        store.seed_pages(JOB, ["1"])
        assert store.location == str(store_path)
        assert store.flight_dir == store_path.with_name("store.db.flight")
    with Store.open(store_path, create=False) as store:
        assert store.page_counts(JOB)["total"] == 1


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("sqlite://", "names no file"),
        ("sqlite:///", "names no file"),
        ("sqlite://relative.db", "names no file"),
        ("mysql://user@host/db", "no store backend for mysql://"),
    ],
)
def test_a_url_that_names_no_store_is_refused_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, words: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match=words):
        Store.open(target)
    assert list(tmp_path.iterdir()) == []
