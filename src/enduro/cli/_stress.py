"""``enduro stress``, ``enduro suite`` and ``enduro report``: thin commands over enduro.stress.

They are plain click commands; ``enduro.cli`` adds them to its group.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from enduro.cli._common import backend_option, console, setup_logging, usage_errors
from enduro.cli._dashboard import dashboard_option, live_dashboard
from enduro.errors import UsageError

__all__ = ["report", "stress", "suite"]


def _report_dir(given: Path | None, prefix: str) -> Path:
    if given is not None:
        if given.exists() and not given.is_dir():
            raise UsageError(f"report dir {str(given)!r} is a file", "give a directory")
        if given.exists() and any(given.iterdir()):
            raise UsageError(
                f"report dir {str(given)!r} is not empty", "give a new or empty directory"
            )
        return given
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(tempfile.mkdtemp(prefix=f"enduro-{prefix}-{stamp}-"))


@click.command()
@click.option(
    "--scenario",
    default="light",
    show_default=True,
    help="A preset (light, medium, heavy, production, endurance) or a .toml file.",
)
@click.option(
    "--job",
    "job_ref",
    default=None,
    help="Your own job (path/file.py[:name] or module:name) against your own site: "
    "browser, memory and runner faults only, integrity by completeness.",
)
@click.option(
    "--hybrid",
    is_flag=True,
    default=None,
    help="The hybrid reference job: the browser logs in, ctx.http calls the site's "
    "JSON API (the site's faults hit the API).",
)
@click.option("--pages", type=click.IntRange(1, 1_000_000), default=None)
@click.option("--duration", default=None, help="Time budget, e.g. 10m or 2h.")
@click.option("--seed", type=int, default=None)
@click.option(
    "--pace",
    type=click.FloatRange(0, 60),
    default=None,
    help="Seconds the site takes per page, as a real site would.",
)
@click.option(
    "--runners",
    type=click.IntRange(1, 8),
    default=None,
    help="Runner processes sharing the pages through one PostgreSQL store (a throwaway "
    "server on loopback); runner crashes hit any of them.",
)
@click.option(
    "--grid",
    "grid_url",
    envvar="ENDURO_GRID_URL",
    default=None,
    help="Take the browsers from this Selenium Grid (http://host:4444); the browser "
    "faults reach them when the Grid's node runs on this host.",
)
@backend_option
@click.option("--report-dir", type=click.Path(path_type=Path), default=None)
@dashboard_option
@click.option("--json", "as_json", is_flag=True, help="Print results.json to stdout.")
@click.option("-v", "--verbose", count=True)
@usage_errors
def stress(
    scenario: str,
    job_ref: str | None,
    grid_url: str | None,
    report_dir: Path | None,
    dashboard_port: int | None,
    as_json: bool,
    verbose: int,
    **overrides: Any,
) -> None:
    """Run a stress scenario on the built-in site (or your job); exit 0 GO, 1 NO-GO."""
    from enduro.report import terminal_summary
    from enduro.settings import Settings
    from enduro.stress.scenario import load_scenario
    from enduro.stress.suite import run_scenario

    config = load_scenario(scenario, job=job_ref, **overrides)
    from enduro.stress.tester import preflight

    preflight(config)  # before writing
    if grid_url is not None:
        from enduro.session import GridSession

        if config.backend == "playwright":
            raise UsageError(
                "the Playwright backend drives a local Chromium; --grid is for Selenium",
                "drop --grid, or --backend",
            )

        GridSession.preflight(Settings.model_validate({"grid_url": grid_url}))  # before writing
    directory = _report_dir(report_dir, "stress")
    out = console()
    setup_logging(out, verbose)
    results = run_scenario(
        config,
        directory,
        grid=grid_url,
        watch=lambda tester: live_dashboard(tester.open_reader, dashboard_port, out),
    )
    if as_json:
        click.echo(results.model_dump_json(indent=1))
    terminal_summary(results, out)
    out.print(f"results: {directory / 'results.json'}  report: {directory / 'report.html'}")
    sys.exit(0 if results.verdict.go else 1)


@click.command()
@click.option("--report-dir", type=click.Path(path_type=Path), default=None)
@click.option("--seed", type=int, default=None)
@click.option(
    "--hybrid",
    is_flag=True,
    help="Only the hybrid reference job (by default the suite runs both jobs).",
)
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print suite.json to stdout.")
@click.option("-v", "--verbose", count=True)
@usage_errors
def suite(
    report_dir: Path | None,
    seed: int | None,
    hybrid: bool,
    backend: str | None,
    as_json: bool,
    verbose: int,
) -> None:
    """Light, medium, heavy on the browser job, then on the hybrid job; stop at the first
    failure; GO (exit 0) or NO-GO (exit 1); on either backend."""
    from enduro.report import terminal_summary
    from enduro.stress.scenario import load_scenario
    from enduro.stress.suite import run_suite
    from enduro.stress.tester import preflight

    on_hybrid: bool | None = True if hybrid else None
    preflight(load_scenario("light", backend=backend))  # before writing
    directory = _report_dir(report_dir, "suite")
    out = console()
    setup_logging(out, verbose)
    results = run_suite(directory, hybrid=on_hybrid, seed=seed, backend=backend)
    if as_json:
        click.echo(results.model_dump_json(indent=1))
    terminal_summary(results, out)
    out.print(f"report: {directory / 'report.html'}")
    sys.exit(0 if results.go else 1)


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--html", "html_path", type=click.Path(path_type=Path), default=None)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the results.json of a run judged again to stdout.",
)
@usage_errors
def report(directory: Path, html_path: Path | None, as_json: bool) -> None:
    """Judge a finished stress run again from DIRECTORY (its run.json and store),
    writing results.json and report.html; exit 0 GO, 1 NO-GO. A suite's directory,
    or one without a run record, gets report.html rebuilt from its results."""
    from enduro.report import REPORT_FILE, rebuild, terminal_summary
    from enduro.stress.record import RUN_FILE

    run_file = directory / RUN_FILE if directory.is_dir() else directory
    if run_file.name != RUN_FILE or not run_file.exists():
        click.echo(str(rebuild(directory, html_path)))
        return
    from enduro.stress.suite import judge_again

    folder = run_file.parent
    results = judge_again(folder, html_path)
    terminal_summary(results, console())
    if as_json:
        click.echo(results.model_dump_json(indent=1))
    else:
        click.echo(str(html_path or folder / REPORT_FILE))
    sys.exit(0 if results.verdict.go else 1)
