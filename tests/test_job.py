"""Tests for the Job API: validating a job and loading one from a file or a module."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from enduro.errors import Fatal, JobLoadError, UsageError
from enduro.job import Job, PageContext, load_job

# A job module: `job` is a Job, `other` a second Job, `factory` returns a Job.
TWO_JOBS = """
from enduro.job import Job

def handler(ctx):
    return []

first = Job(name="first", pages=range(1, 4), handler=handler)
second = Job(name="second", pages=["a", "b"], handler=handler, record_key="key")

def factory():
    return Job(name="made", pages=[10, 20], handler=handler)

def broken_factory():
    raise RuntimeError("factory exploded")

not_a_job = 42
"""

ONE_JOB = """
from enduro.job import Job

job_of_the_file = Job(name="only", pages=[3, 1, 2], handler=lambda ctx: [])
"""

NAMED_JOB_AND_OTHER = """
from enduro.job import Job

other = Job(name="other", pages=[1], handler=lambda ctx: [])
job = Job(name="chosen", pages=[1], handler=lambda ctx: [])
"""


def _handler(ctx: PageContext) -> list[dict[str, object]]:
    return []


@pytest.fixture(autouse=True)
def _forget_loaded_job_modules() -> Iterator[None]:
    """load_job registers job files in sys.modules; drop what a test loaded."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("enduro_job_", "tjob_")):
            del sys.modules[name]


def _write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def _load_error(ref: str) -> JobLoadError:
    with pytest.raises(JobLoadError) as info:
        load_job(ref)
    error = info.value
    # A JobLoadError is a usage error: the CLI shows it as one line, exit code 2.
    assert isinstance(error, UsageError)
    assert error.exit_code == 2
    assert "\n" not in error.format_line()
    return error


# --- loading ------------------------------------------------------------------------


def test_load_from_file_with_one_job(tmp_path: Path) -> None:
    path = _write(tmp_path, "one.py", ONE_JOB)

    job = load_job(str(path))

    assert isinstance(job, Job)
    assert job.name == "only"
    assert job.page_keys == ["3", "1", "2"]


def test_load_from_file_prefers_the_variable_called_job(tmp_path: Path) -> None:
    path = _write(tmp_path, "named.py", NAMED_JOB_AND_OTHER)

    assert load_job(str(path)).name == "chosen"


def test_load_from_file_and_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "two.py", TWO_JOBS)

    job = load_job(f"{path}:second")

    assert job.name == "second"
    assert job.record_key == "key"
    assert job.page_keys == ["a", "b"]


def test_load_from_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "two.py", TWO_JOBS)
    monkeypatch.chdir(tmp_path)

    assert load_job("two.py:first").name == "first"
    assert load_job("./two.py:second").name == "second"


def test_load_from_module_and_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "tjob_module.py", TWO_JOBS)
    monkeypatch.syspath_prepend(str(tmp_path))

    job = load_job("tjob_module:first")

    assert job.name == "first"
    assert job.page_keys == ["1", "2", "3"]


def test_load_from_a_factory_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "two.py", TWO_JOBS)
    _write(tmp_path, "tjob_factory.py", TWO_JOBS)
    monkeypatch.syspath_prepend(str(tmp_path))

    from_file = load_job(f"{path}:factory")
    from_module = load_job("tjob_factory:factory")

    for job in (from_file, from_module):
        assert isinstance(job, Job)
        assert job.name == "made"
        assert job.page_keys == ["10", "20"]


# --- load errors ----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.py"

    error = _load_error(str(missing))

    assert "not found" in error.message
    assert str(missing) in error.message


def test_file_without_a_job(tmp_path: Path) -> None:
    path = _write(tmp_path, "empty.py", "x = 1\n")

    error = _load_error(str(path))

    assert "no Job" in error.message


def test_file_with_two_jobs_and_no_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "two.py", TWO_JOBS)

    error = _load_error(str(path))

    assert "first" in error.message
    assert "second" in error.message


def test_name_not_found_in_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "two.py", TWO_JOBS)

    error = _load_error(f"{path}:third")

    assert "'third'" in error.message


def test_name_not_found_in_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "tjob_noname.py", TWO_JOBS)
    monkeypatch.syspath_prepend(str(tmp_path))

    error = _load_error("tjob_noname:third")

    assert "'third'" in error.message


def test_attribute_that_is_not_a_job(tmp_path: Path) -> None:
    path = _write(tmp_path, "two.py", TWO_JOBS)

    error = _load_error(f"{path}:not_a_job")

    assert "int" in error.message
    assert "not an enduro Job" in error.message


def test_factory_that_raises(tmp_path: Path) -> None:
    path = _write(tmp_path, "two.py", TWO_JOBS)

    error = _load_error(f"{path}:broken_factory")

    assert "factory exploded" in error.message
    assert isinstance(error.__cause__, RuntimeError)


def test_file_that_raises_on_import(tmp_path: Path) -> None:
    path = _write(tmp_path, "boom.py", "1 / 0\n")
    before = {name for name in sys.modules if name.startswith("enduro_job_")}

    error = _load_error(str(path))

    assert "ZeroDivisionError" in error.message
    assert isinstance(error.__cause__, ZeroDivisionError)
    # The half-imported module is not left behind in sys.modules.
    assert {name for name in sys.modules if name.startswith("enduro_job_")} == before


def test_missing_module() -> None:
    error = _load_error("tjob_no_such_module_anywhere:job")

    assert "tjob_no_such_module_anywhere" in error.message


def test_module_without_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "tjob_bare.py", ONE_JOB)
    monkeypatch.syspath_prepend(str(tmp_path))

    error = _load_error("tjob_bare")

    assert "module:name" in error.hint
    # Nothing was imported: a module reference without a name is refused up front.
    assert "tjob_bare" not in sys.modules


# --- the Job itself -----------------------------------------------------------------


def test_page_keys_are_strings_in_order() -> None:
    job = Job(name="j", pages=[3, "b", 1.5, 10], handler=_handler)

    assert job.page_keys == ["3", "b", "1.5", "10"]


def test_page_keys_survive_a_one_shot_iterable() -> None:
    job = Job(name="j", pages=(n for n in range(5, 0, -1)), handler=_handler)

    assert job.page_keys == ["5", "4", "3", "2", "1"]
    assert job.page_keys == ["5", "4", "3", "2", "1"]


def test_page_keys_is_a_copy() -> None:
    job = Job(name="j", pages=range(3), handler=_handler)

    job.page_keys.append("intruder")

    assert job.page_keys == ["0", "1", "2"]


@pytest.mark.parametrize(
    "pages",
    [
        pytest.param(["1", "2", "1"], id="same-string"),
        pytest.param([1, "1"], id="same-after-str"),
    ],
)
def test_duplicate_page_keys_are_rejected(pages: list[object]) -> None:
    with pytest.raises(ValueError, match="more than once"):
        Job(name="j", pages=pages, handler=_handler)


@pytest.mark.parametrize(
    "name", ["", "has space", "a/b", "x" * 101, "José", "semi;colon", "new\nline"]
)
def test_bad_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="job name"):
        Job(name=name, pages=[1], handler=_handler)


@pytest.mark.parametrize("name", ["a", "x" * 100, "my-job.v2_1", "Matches"])
def test_good_names_are_accepted(name: str) -> None:
    assert Job(name=name, pages=[1], handler=_handler).name == name


def test_handler_must_be_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        Job(name="j", pages=[1], handler="not callable")  # type: ignore[arg-type]


# --- hybrid jobs: site, prepare_request, pages found at run time, ctx.enqueue -------------


def _handler(ctx: PageContext) -> list[dict[str, object]]:
    return []


@pytest.mark.parametrize(
    ("site", "origin"),
    [
        ("http://127.0.0.1:8700", "http://127.0.0.1:8700"),
        ("https://www.example.com/", "https://www.example.com"),
    ],
)
def test_a_jobs_site_is_kept_as_its_origin(site: str, origin: str) -> None:
    assert Job(name="j", pages=[1], handler=_handler, site=site).site == origin


@pytest.mark.parametrize(
    "site", ["127.0.0.1:8700", "ftp://example.com", "https://", "https://example.com/api/v2"]
)
def test_a_site_that_is_not_an_origin_is_refused(site: str) -> None:
    with pytest.raises(ValueError, match="job site"):
        Job(name="j", pages=[1], handler=_handler, site=site)


def test_pages_may_be_a_function_called_at_run_time() -> None:
    job = Job(name="j", pages=lambda ctx: range(3), handler=_handler)

    assert job.discovers_pages
    with pytest.raises(TypeError, match="finds its pages at run time"):
        job.page_keys  # noqa: B018 - the property is the point
    assert not Job(name="j", pages=[1], handler=_handler).discovers_pages


def test_ctx_http_without_a_site_is_a_fatal_error_naming_the_fix() -> None:
    ctx = PageContext(
        key="1", driver=None, attempt=1, job=Job(name="j", pages=[1], handler=_handler)
    )

    with pytest.raises(Fatal, match=r"names no site: give Job\(site="):
        ctx.http  # noqa: B018 - the property is the point


def test_enqueue_collects_keys_as_strings_where_pages_may_be_added() -> None:
    job = Job(name="j", pages=[1], handler=_handler)
    ctx = PageContext(key="1", driver=None, attempt=1, job=job, enqueued=[])

    ctx.enqueue([7, "d:M1"])
    ctx.enqueue(iter(["x"]))

    assert ctx.enqueued == ["7", "d:M1", "x"]
    with pytest.raises(TypeError, match="not one string"):
        ctx.enqueue("abc")
    with pytest.raises(ValueError, match="can't be empty"):
        ctx.enqueue([""])
    login_ctx = PageContext(key="1", driver=None, attempt=1, job=job)
    with pytest.raises(RuntimeError, match="in a handler"):
        login_ctx.enqueue(["1"])
