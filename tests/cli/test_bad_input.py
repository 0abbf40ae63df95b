"""Bad input to the ``enduro`` command: exit 2, one line on stderr, nothing touched.

Every ``run`` case points Chromium and chromedriver at stand-in scripts that
leave a marker file if anything ever executes them, so these tests prove that
the command fails before a browser is started, and never start one.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests._postgres import PASSWORD, PostgresServer

from enduro.store import Store

ENDURO = Path(sys.executable).parent / "enduro"
REFERENCE = "enduro.stress.reference:job"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Cli:
    """Runs ``enduro`` in a work directory with stand-in browser binaries."""

    def __init__(self, workdir: Path, bindir: Path) -> None:
        self.workdir = workdir
        self.marker = bindir / "browser-was-started"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ENDURO_")}
        self.env["ENDURO_SITE_URL"] = "http://127.0.0.1:9"  # nothing may be fetched anyway
        for setting, name in (("CHROMIUM", "chromium"), ("CHROMEDRIVER", "chromedriver")):
            fake = bindir / name
            fake.write_text(f"#!/bin/sh\ntouch '{self.marker}'\nexit 1\n")
            fake.chmod(0o755)
            self.env[f"ENDURO_{setting}"] = str(fake)

    def __call__(self, *args: str, **env: str) -> Result:
        done = subprocess.run(
            [str(ENDURO), *args],
            cwd=self.workdir,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def cli(tmp_path: Path, workdir: Path) -> Cli:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    return Cli(workdir, bindir)


@pytest.fixture
def valid_store(workdir: Path) -> Path:
    """An enduro store with one page done and one pending (closed: no -wal/-shm)."""
    path = workdir / "valid.db"
    with Store.open(path) as store:
        store.seed_pages("matches", ["1", "2"])
        page = store.claim("matches", "run-a", 60.0)
        assert page is not None
        assert store.complete(page, "run-a", [{"match_id": "m1", "name": "Zoë"}], "match_id")
    return path


def _snapshot(path: Path) -> tuple[str, int, list[str]]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest, path.stat().st_mtime_ns, sorted(p.name for p in path.parent.iterdir())


def _assert_usage_error(result: Result, *words: str) -> str:
    """Exit 2 and exactly one non-empty stderr line, naming the problem."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _assert_no_browser(cli: Cli) -> None:
    assert not cli.marker.exists(), "a browser or driver was executed"


# --- run: the job ---------------------------------------------------------------------


def test_run_missing_job_file(cli: Cli, valid_store: Path) -> None:
    before = _snapshot(valid_store)

    result = cli("run", "missing.py", "--store", str(valid_store))

    _assert_usage_error(result, "missing.py", "not found")
    assert _snapshot(valid_store) == before
    _assert_no_browser(cli)


def test_run_job_file_without_a_job(cli: Cli, workdir: Path) -> None:
    (workdir / "job_without_job.py").write_text("PAGES = 3\n")

    result = cli("run", "job_without_job.py", "--store", "new.db")

    _assert_usage_error(result, "job_without_job.py", "no Job")
    assert not (workdir / "new.db").exists()
    assert sorted(p.name for p in workdir.iterdir()) == ["job_without_job.py"]
    _assert_no_browser(cli)


def test_run_job_file_that_raises(cli: Cli, workdir: Path) -> None:
    (workdir / "broken.py").write_text("import no_such_module_for_enduro\n")

    result = cli("run", "broken.py", "--store", "new.db")

    _assert_usage_error(result, "broken.py", "ModuleNotFoundError")
    assert not (workdir / "new.db").exists()
    _assert_no_browser(cli)


# --- run: the store ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "store",
    [
        pytest.param("/proc/nonexistent-dir/s.db", id="proc-missing-dir"),
        pytest.param("/sys/enduro-test.db", id="sysfs"),
        pytest.param("/etc/hostname/s.db", id="under-a-file"),
    ],
)
def test_run_with_an_unwritable_store_path(cli: Cli, store: str) -> None:
    assert not Path(store).exists()

    result = cli("run", REFERENCE, "--store", store)

    _assert_usage_error(result, store)
    assert not Path(store).exists()
    _assert_no_browser(cli)


def test_run_with_a_text_file_as_store(cli: Cli, workdir: Path) -> None:
    text = workdir / "notastore.txt"
    text.write_text("these are my notes\nnot a database\n")
    before = _snapshot(text)

    result = cli("run", REFERENCE, "--store", "notastore.txt")

    _assert_usage_error(result, "notastore.txt", "not an enduro store")
    assert _snapshot(text) == before
    _assert_no_browser(cli)


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_run_with_a_foreign_sqlite_file_as_store(cli: Cli, workdir: Path, journal: str) -> None:
    foreign = workdir / "other-app.db"
    conn = sqlite3.connect(foreign)
    conn.execute(f"PRAGMA journal_mode = {journal}")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    conn.commit()
    conn.close()
    before = _snapshot(foreign)

    result = cli("run", REFERENCE, "--store", str(foreign))

    _assert_usage_error(result, "other-app.db", "not an enduro store")
    assert _snapshot(foreign) == before
    _assert_no_browser(cli)


# --- run: the browser and the recovery settings -----------------------------------------


@pytest.mark.parametrize(
    ("env", "words"),
    [
        pytest.param(
            {"ENDURO_CHROMIUM": "/nonexistent/chromium"},
            ("Chromium", "/nonexistent/chromium"),
            id="no-chromium",
        ),
        pytest.param(
            {"ENDURO_CHROMEDRIVER": "no-such-driver"},
            ("chromedriver", "no-such-driver"),
            id="no-chromedriver",
        ),
        pytest.param(
            {"ENDURO_RECOVERY": '{"element": "explode"}'},
            ("recovery", "explode", "allowed: retry"),
            id="unknown-action",
        ),
        pytest.param(
            {"ENDURO_RECOVERY": '{"gremlins": "retry"}'},
            ("recovery", "gremlins"),
            id="unknown-category",
        ),
        pytest.param({"ENDURO_LOGIN_URL_PATTERN": "(unclosed"}, ("login_url_pattern",), id="regex"),
        pytest.param({"ENDURO_RATE_MIN": "-1"}, ("rate_min",), id="negative-rate"),
        pytest.param({"ENDURO_BACKEND": "firefox"}, ("backend", "firefox"), id="no-such-backend"),
        pytest.param(
            {"ENDURO_BACKEND": "playwright", "ENDURO_CHROMIUM": "/nonexistent/chromium"},
            ("Chromium", "/nonexistent/chromium"),
            id="playwright-no-chromium",
        ),
        pytest.param(
            {"ENDURO_BACKEND": "playwright", "ENDURO_GRID_URL": "http://127.0.0.1:1"},
            ("Playwright backend", "--grid"),
            id="playwright-on-a-grid",
        ),
    ],
)
def test_run_with_an_unusable_setting_leaves_the_store_alone(
    cli: Cli, valid_store: Path, env: dict[str, str], words: tuple[str, ...]
) -> None:
    before = _snapshot(valid_store)

    result = cli("run", REFERENCE, "--store", str(valid_store), **env)

    _assert_usage_error(result, *words)
    assert _snapshot(valid_store) == before
    _assert_no_browser(cli)


def test_run_asking_for_the_backend_the_job_is_not_written_for(cli: Cli, valid_store: Path) -> None:
    before = _snapshot(valid_store)

    # the reference job follows ENDURO_BACKEND (Selenium here) and pins it
    result = cli("run", REFERENCE, "--store", str(valid_store), "--backend", "playwright")

    line = _assert_usage_error(result, "written for the selenium backend", "playwright")
    assert "--backend selenium" in line  # how to fix it
    assert _snapshot(valid_store) == before
    _assert_no_browser(cli)


def test_run_on_playwright_without_the_package_says_how_to_get_it(
    cli: Cli, valid_store: Path, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow" / "playwright"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no playwright here')\n")
    before = _snapshot(valid_store)

    result = cli(
        "run",
        REFERENCE,
        "--store",
        str(valid_store),
        ENDURO_BACKEND="playwright",
        PYTHONPATH=str(shadow.parent),
    )

    _assert_usage_error(result, "playwright package is not installed", "enduro[playwright]")
    assert _snapshot(valid_store) == before
    _assert_no_browser(cli)


def test_run_without_a_browser_creates_no_store(cli: Cli, workdir: Path) -> None:
    result = cli("run", REFERENCE, "--store", "fresh.db", ENDURO_CHROMIUM="/nonexistent/chromium")

    _assert_usage_error(result, "Chromium")
    assert list(workdir.iterdir()) == []


def test_run_with_an_invalid_setting(cli: Cli, valid_store: Path) -> None:
    before = _snapshot(valid_store)

    result = cli("run", REFERENCE, "--store", str(valid_store), "--workers", "0")

    _assert_usage_error(result, "workers")
    assert _snapshot(valid_store) == before
    _assert_no_browser(cli)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("run", REFERENCE, "--workers", "many"), ("'--workers'", "see enduro run --help")),
        (("run",), ("Missing argument 'JOB'", "see enduro run --help")),
        (("run", REFERENCE, "--nope"), ("No such option '--nope'",)),
        (("stress", "--runners", "0"), ("'--runners'", "1<=x<=8", "see enduro stress --help")),
        (("bogus",), ("No such command 'bogus'", "see enduro --help")),
        (("run", REFERENCE, "--backend", "firefox"), ("'--backend'", "'firefox'")),
    ],
)
def test_what_the_command_line_parser_refuses_is_one_line_too(
    cli: Cli, workdir: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    line = _assert_usage_error(cli(*args), *words)
    assert line.startswith("error: ") and "Usage:" not in line
    assert list(workdir.iterdir()) == []
    _assert_no_browser(cli)


def test_help_and_version_still_exit_0(cli: Cli) -> None:
    assert cli("--version").returncode == 0
    shown = cli("stress", "--help")
    assert shown.returncode == 0 and "--runners" in shown.stdout and shown.stderr == ""


# --- status / export / requeue ----------------------------------------------------------


def test_status_of_a_missing_store(cli: Cli, workdir: Path) -> None:
    result = cli("status", "missing.db")

    _assert_usage_error(result, "missing.db")
    assert list(workdir.iterdir()) == []


def test_export_of_a_text_file(cli: Cli, workdir: Path) -> None:
    text = workdir / "notastore.txt"
    text.write_text("hello\n")
    before = _snapshot(text)

    result = cli("export", "notastore.txt", "--format", "jsonl")

    _assert_usage_error(result, "notastore.txt", "not an enduro store")
    assert result.stdout == ""
    assert _snapshot(text) == before


def test_requeue_without_failed_or_pages(cli: Cli, valid_store: Path) -> None:
    before = _snapshot(valid_store)

    result = cli("requeue", str(valid_store))

    _assert_usage_error(result, "--failed", "--pages")
    assert _snapshot(valid_store) == before


# --- PostgreSQL stores ------------------------------------------------------------------


def test_run_with_an_unreachable_database(
    cli: Cli, workdir: Path, pg_server: PostgresServer
) -> None:
    url = pg_server.url("jobs").replace(f":{pg_server.port}/", ":1/")

    result = cli("run", REFERENCE, "--store", url)

    line = _assert_usage_error(result, "can't reach PostgreSQL at 127.0.0.1:1")
    assert PASSWORD not in result.stderr + result.stdout, line
    assert list(workdir.iterdir()) == []
    _assert_no_browser(cli)


def test_run_with_wrong_database_credentials(cli: Cli, workdir: Path, pg_url: str) -> None:
    wrong = pg_url.replace(PASSWORD, "guessed-wrong")

    result = cli("run", REFERENCE, "--store", wrong)

    _assert_usage_error(result, "refused user 'enduro'", "wrong password")
    assert "guessed-wrong" not in result.stderr + result.stdout
    assert list(workdir.iterdir()) == []
    _assert_no_browser(cli)


def test_run_with_a_database_of_another_program(
    cli: Cli, pg_server: PostgresServer, pg_url: str
) -> None:
    database = pg_url.rsplit("/", 1)[1]
    pg_server.sql(
        "CREATE TABLE customers (name text); INSERT INTO customers VALUES ('Zoë')", database
    )

    result = cli("run", REFERENCE, "--store", pg_url)

    _assert_usage_error(result, "another program's tables (customers)")
    tables = "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'"
    assert pg_server.sql(tables, database) == "customers"
    assert pg_server.sql("SELECT name FROM customers", database) == "Zoë"
    _assert_no_browser(cli)


def test_status_of_an_empty_database_makes_no_store(
    cli: Cli, pg_server: PostgresServer, pg_url: str
) -> None:
    result = cli("status", pg_url)

    _assert_usage_error(result, "no enduro store in database")
    database = pg_url.rsplit("/", 1)[1]
    count = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    assert pg_server.sql(count, database) == "0"
    assert PASSWORD not in result.stderr


# --- dashboard ------------------------------------------------------------------------


def test_dashboard_of_a_missing_store(cli: Cli, workdir: Path) -> None:
    result = cli("dashboard", str(workdir / "nope.db"), "--port", "0")

    _assert_usage_error(result, "nope.db")
    assert not (workdir / "nope.db").exists()


def test_dashboard_on_a_network_address_without_a_token(cli: Cli, valid_store: Path) -> None:
    before = _snapshot(valid_store)

    result = cli("dashboard", str(valid_store), "--host", "0.0.0.0", "--port", "0")

    _assert_usage_error(result, "0.0.0.0", "token")
    assert _snapshot(valid_store) == before


def test_dashboard_on_a_port_in_use(cli: Cli, valid_store: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])

        result = cli("dashboard", str(valid_store), "--port", port)

    _assert_usage_error(result, port)


def test_run_with_a_dashboard_port_in_use_writes_nothing(cli: Cli, workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])

        result = cli("run", REFERENCE, "--store", str(workdir / "new.db"), "--dashboard", port)

    _assert_usage_error(result, port)
    assert not (workdir / "new.db").exists()
    _assert_no_browser(cli)
