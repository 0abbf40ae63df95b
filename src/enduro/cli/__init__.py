"""The ``enduro`` command: thin commands over the library.

Exit codes: 0 success; 1 the run failed; 2 bad input (one line on stderr);
130 interrupted (progress kept, resume hint printed).
"""

from __future__ import annotations

import csv
import json
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from enduro.cli import _stress
from enduro.cli._common import backend_option
from enduro.cli._common import console as _console
from enduro.cli._common import setup_logging as _setup_logging
from enduro.cli._common import usage_errors as _usage_errors
from enduro.cli._dashboard import dashboard, dashboard_option, live_dashboard
from enduro.errors import UsageError
from enduro.report import error_lines, status_report
from enduro.settings import Settings
from enduro.store import Store, copy_store, display_target, dumps_record

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


class _OneLineErrors(click.Group):
    """The command group, with click's own usage errors (an option out of range, an
    unknown option, a missing argument) as one line on stderr and exit 2, as every
    other bad input is, instead of click's three."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()  # `enduro` alone: the help, as click gives it
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "enduro"
            line = UsageError(exc.format_message().rstrip("."), f"see {where} --help")
            click.echo(line.format_line(), err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_OneLineErrors)
@click.version_option(package_name="enduro")
def main() -> None:
    """enduro: make long browser-automation jobs finish."""


# ---- run / demo --------------------------------------------------------


def _run_options(func: F) -> F:
    options = [
        click.option(
            "--store",
            help="Store: a file path (SQLite) or postgresql://user@host/db (default enduro.db).",
        ),
        click.option("--workers", type=int, help="Browser sessions side by side (default 1)."),
        click.option(
            "--rate-max",
            type=float,
            help="Pages/s the job never exceeds, all its runners together (default: none).",
        ),
        click.option("--host-id", help="This runner's host name in the store (default: hostname)."),
        click.option(
            "--grid", "grid_url", help="Take browsers from this Selenium Grid (http://host:4444)."
        ),
        backend_option,
        click.option("--headful", is_flag=True, help="Show the browser window."),
        click.option("--page-timeout", type=float, help="Seconds a page may take (default 60)."),
        click.option("--restart-every", type=int, help="Restart the browser every N pages."),
        click.option(
            "--monitor-interval", type=float, help="Seconds between resource samples (0: off)."
        ),
        dashboard_option,
        click.option("-v", "--verbose", count=True, help="More log output (-vv: debug)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _settings(**overrides: Any) -> Settings:
    fields = {
        "store": overrides.get("store"),
        "workers": overrides.get("workers"),
        "rate_max": overrides.get("rate_max"),
        "host_id": overrides.get("host_id"),
        "grid_url": overrides.get("grid_url"),
        "backend": overrides.get("backend"),
        "page_timeout": overrides.get("page_timeout"),
        "restart_every_pages": overrides.get("restart_every"),
        "monitor_interval": overrides.get("monitor_interval"),
    }
    if overrides.get("headful"):
        fields["headless"] = False
    return Settings(**{k: v for k, v in fields.items() if v is not None})


def _execute(
    job: Any, settings: Settings, resume_cmd: str, verbose: int, dashboard: int | None = None
) -> None:
    """Run a job with a progress bar and a summary (and the live dashboard on port
    ``dashboard``); exits with the run's code."""
    from enduro.cli._display import print_summary, progress_bar
    from enduro.runner import Runner
    from enduro.session import backend_for

    console = _console()
    _setup_logging(console, verbose)
    backend_for(settings, job).preflight(settings)
    # the dashboard first: a port it can't have refuses the run before anything is written
    with (
        live_dashboard(lambda: Store.open(settings.store, read_only=True), dashboard, console),
        Store.open(settings.store) as store,
    ):
        with progress_bar(console, job.name) as hook:
            runner = Runner(job, store, settings, on_progress=hook)
            result = runner.run()
            hook(result.progress)
        print_summary(console, result, store, job.name)
        reason, resume = escape(result.reason), escape(resume_cmd)
        if result.status == "interrupted":
            console.print(f"[yellow]interrupted; progress is kept. Resume with: {resume}")
        elif result.status == "failed":
            requeue = escape(f"enduro requeue {shlex.quote(store.location)} --failed")
            console.print(f"[red]{reason}.[/] Retry them with: {requeue}, then {resume}")
        elif result.broken:
            console.print(f"[red]{reason}[/]; fix it and resume with: {resume}")
        elif result.status == "halted":
            console.print(f"[red]halted: {reason}.[/] Resume with: {resume}")
    sys.exit(result.exit_code)


@main.command()
@click.argument("job_ref", metavar="JOB")
@_run_options
@_usage_errors
def run(job_ref: str, verbose: int, **options: Any) -> None:
    """Run JOB (path/file.py[:name] or module:name) until every page is done."""
    from enduro.job import load_job

    job = load_job(job_ref)
    settings = _settings(**options)
    resume = shlex.join(["enduro", "run", job_ref, "--store", display_target(settings.store)])
    _execute(job, settings, resume, verbose, options.get("dashboard_port"))


@main.command()
@click.option("--pages", type=click.IntRange(1, 100_000), default=300, show_default=True)
@click.option("--rows", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--hybrid",
    is_flag=True,
    help="The hybrid reference job: the browser logs in, ctx.http calls the site's JSON API.",
)
@_run_options
@_usage_errors
def demo(pages: int, rows: int, seed: int, hybrid: bool, verbose: int, **options: Any) -> None:
    """Run the reference job over a built-in site started in-process."""
    from enduro.stress.reference import make_job
    from enduro.stress.reference_hybrid import make_hybrid_job
    from enduro.stress.site import SiteConfig, SiteServer

    if options.get("store") is None:
        options["store"] = str(Path(tempfile.mkdtemp(prefix="enduro-demo-")) / "demo.db")
    settings = _settings(**options)
    config = SiteConfig(seed=seed, pages=pages, rows=rows)
    with SiteServer(config) as site:
        backend = settings.backend or "selenium"
        job = (
            make_hybrid_job(site.url, backend=backend)
            if hybrid
            else make_job(site.url, pages, backend=backend)
        )
        shown = display_target(settings.store)
        command = ["enduro", "demo", "--pages", str(pages), "--store", shown]
        if settings.backend:
            command += ["--backend", settings.backend]
        resume = shlex.join([*command, "--hybrid"] if hybrid else command)
        _execute(job, settings, resume, verbose, options.get("dashboard_port"))


# ---- site --------------------------------------------------------------


@main.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--pages", type=click.IntRange(1, 1_000_000), default=724, show_default=True)
@click.option("--rows", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--truth", is_flag=True, help="Print the ground truth as JSONL and exit.")
@click.option(
    "--hybrid",
    is_flag=True,
    help="With --truth: the records a hybrid job exports (the list merged with the "
    "JSON API's details). The JSON API is always served.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND=RATE",
    help="Inject fault KIND into that share of the requests it targets (repeatable), "
    "e.g. rate_limit=0.05.",
)
@click.option("--fault-seed", type=int, default=0, show_default=True, help="Seeds the faults.")
@click.option(
    "--retry-after",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Seconds a 429 or 503 asks clients to wait.",
)
@click.option(
    "--latency",
    type=click.FloatRange(min=0),
    default=3.0,
    show_default=True,
    help="Seconds the latency fault holds a page back.",
)
@click.option(
    "--expire-session-every",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Log the user out on every N-th match-list page (0: never).",
)
@click.option(
    "--session-ttl",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a login lasts (default: until logout).",
)
@click.option(
    "--pace",
    type=click.FloatRange(0, 60),
    default=0.0,
    show_default=True,
    help="Seconds every match-list page takes to answer, as a real site's does.",
)
@_usage_errors
def site(
    port: int,
    host: str,
    pages: int,
    rows: int,
    seed: int,
    truth: bool,
    hybrid: bool,
    faults: tuple[str, ...],
    fault_seed: int,
    retry_after: float,
    latency: float,
    expire_session_every: int,
    session_ttl: float | None,
    pace: float,
) -> None:
    """Serve the built-in target site (or print its ground truth)."""
    from enduro.stress.site import (
        FaultPlan,
        SiteConfig,
        ground_truth,
        hybrid_truth,
        serve_forever,
    )

    if truth:
        out = sys.stdout
        for record in (hybrid_truth if hybrid else ground_truth)(seed, pages, rows):
            out.write(dumps_record(record) + "\n")
        return
    try:
        plan = FaultPlan(
            seed=fault_seed,
            rates=_fault_rates(faults),
            expire_session_every=expire_session_every,
            retry_after=retry_after,
            latency=latency,
        )
    except ValueError as exc:
        raise UsageError(f"bad --fault options: {exc}", "lower the rates") from exc
    config = SiteConfig(
        seed=seed, pages=pages, rows=rows, fault_plan=plan, session_ttl=session_ttl, pace=pace
    )
    extras = [f"{kind} {rate:g}" for kind, rate in plan.rates.items()]
    if expire_session_every:
        extras.append(f"session expiry every {expire_session_every} pages")
    if session_ttl is not None:
        extras.append(f"logins last {session_ttl:g} s")
    if pace:
        extras.append(f"{pace:g} s a page")
    suffix = f"; faults: {', '.join(extras)}" if extras else ""

    def ready(url: str) -> None:
        click.echo(
            f"serving the built-in site on {url} ({pages} pages x {rows} rows){suffix}",
            err=False,
        )
        sys.stdout.flush()

    try:
        serve_forever(config, host=host, port=port, on_ready=ready)
    except OSError as exc:
        raise UsageError(
            f"can't serve on {host}:{port}: {exc.strerror}", "pick another --port"
        ) from exc


def _fault_rates(faults: tuple[str, ...]) -> dict[str, float]:
    """Parse ``--fault KIND=RATE`` options; UsageError naming the bad one."""
    from enduro.stress.site import FAULT_KINDS

    rates: dict[str, float] = {}
    for item in faults:
        kind, sep, raw = item.partition("=")
        kind = kind.strip()
        try:
            rate = float(raw)
        except ValueError:
            rate = float("nan")
        if not sep or not 0.0 <= rate <= 1.0:
            raise UsageError(
                f"--fault {item!r} is not KIND=RATE with RATE in [0, 1]",
                "e.g. --fault rate_limit=0.05",
            )
        if kind not in FAULT_KINDS:
            raise UsageError(
                f"--fault {item!r}: unknown fault kind {kind!r}",
                f"pick one of {', '.join(FAULT_KINDS)}",
            )
        rates[kind] = rate
    return rates


# ---- status / export / requeue -------------------------------------------


def _open_existing(path: str) -> Store:
    return Store.open(path, create=False)


@main.command()
@click.argument("store_path", metavar="STORE")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_usage_errors
def status(store_path: str, as_json: bool) -> None:
    """Totals of a store: pages, records, restarts, errors by category, the last
    run's resources."""
    with _open_existing(store_path) as store:
        report = status_report(store)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    console = Console()
    for name, info in report["jobs"].items():
        pages = info["pages"]
        console.print(
            f"[bold]{name}[/]: {pages['done']}/{pages['total']} pages done, "
            f"{pages['failed']} failed, {pages['pending']} pending, {pages['leased']} leased; "
            f"{info['records']} records; {info['restarts']} browser restarts"
        )
        errors = info["errors"]
        console.print(
            "  errors: "
            + (", ".join(f"{c} {n}" for c, n in sorted(errors.items())) if errors else "none")
        )
        for line in error_lines(info["top_errors"]):
            console.print(f"    {escape(line)}")
        if info["key_moved"]:
            console.print(
                f"  record keys moved to another page: {info['key_moved']} "
                "(each record is kept once, under the later page)"
            )
        for key, error in info["failed_pages"][:20]:
            console.print(f"  failed page {escape(key)}: {escape(error)}")
        for endpoint, counts in info["http"].items():
            latency = counts.get("latency_ms", {})
            failed = ", ".join(f"{c} {n}" for c, n in counts["errors"].items()) or "none"
            console.print(
                f"  ctx.http {endpoint}: {counts['requests']} requests, "
                f"{counts['retries']} retried inside the page; failures: {failed}; "
                f"p50 {latency.get('p50', 0):g} ms, p95 {latency.get('p95', 0):g} ms"
            )
    if not report["jobs"]:
        console.print("empty store: no job has run yet")
    sample = report["latest_sample"]
    if sample:
        browser = (
            f"browser {sample['browser_count']} processes PSS "
            f"{sample['browser_pss'] / 2**20:.0f} MB"
            if sample["browser_count"]
            else "browser memory not measured (no browser process on this host)"
        )
        console.print(
            f"latest sample: memory {sample['mem_percent']:.0f}% "
            f"({sample.get('memory_limit', 'host')}), "
            f"CPU {sample['cpu_percent']:.0f}%, {browser}, runner RSS "
            f"{sample['runner_rss'] / 2**20:.0f} MB, disk free {sample['disk_free'] / 2**30:.1f} GB"
        )
    resources = report["last_run_resources"]
    if resources:
        line = f"last run {resources['run_id']} ({resources['status']}): "
        line += f"{resources['samples']} resource samples, "
        browser, runner = resources["peak_browser_pss_mb"], resources["peak_runner_rss_mb"]
        if browser is None and runner is None:
            line += "no memory figures"
        else:
            line += (
                "browser memory not measured"
                if browser is None
                else f"peak browser PSS {browser:.0f} MB"
            )
            line += f", peak runner RSS {runner or 0:.0f} MB; leak {resources['leak_text']}"
        console.print(line)
    for alert in report["open_alerts"]:
        console.print(f"[red]open alert[/]: {alert['message']}")


@main.command()
@click.argument("store_path", metavar="STORE")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), required=True)
@click.option("--out", type=click.Path(path_type=Path), help="Write here instead of stdout.")
@click.option("--job", "job_name", help="Only this job's records.")
@_usage_errors
def export(store_path: str, fmt: str, out: Path | None, job_name: str | None) -> None:
    """Write a store's records as CSV or JSONL, in page order."""
    with _open_existing(store_path) as store:
        texts = store.iter_record_texts(job_name)
        if out is None:
            _write_records(sys.stdout, texts, fmt)
        else:
            try:
                with out.open("w", encoding="utf-8", newline="") as stream:
                    _write_records(stream, texts, fmt)
            except OSError as exc:
                raise UsageError(
                    f"can't write {str(out)!r}: {exc.strerror}", "check --out"
                ) from exc


def _write_records(stream: Any, texts: Iterator[str], fmt: str) -> None:
    if fmt == "jsonl":
        for text in texts:
            stream.write(text + "\n")
        return
    records = [json.loads(t) for t in texts]
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    writer = csv.DictWriter(stream, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(
            {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in record.items()}
        )


@main.command()
@click.argument("store_path", metavar="STORE")
@click.option("--failed", is_flag=True, help="Put every failed page back to pending.")
@click.option("--pages", "keys", help="Comma-separated page keys to put back.")
@click.option("--job", "job_name", help="Only this job's pages.")
@_usage_errors
def requeue(store_path: str, failed: bool, keys: str | None, job_name: str | None) -> None:
    """Put failed (or named) pages back to pending, with fresh attempts."""
    if not failed and not keys:
        raise UsageError("requeue needs --failed or --pages KEYS", "say which pages to put back")
    key_list = [k.strip() for k in (keys or "").split(",") if k.strip()]
    with _open_existing(store_path) as store:
        moved = store.requeue(job_name, failed=failed, keys=key_list)
    click.echo(f"{moved} pages back to pending")


@main.command()
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
@_usage_errors
def migrate(source: str, destination: str) -> None:
    """Copy the whole store SRC into DST, a new file or an empty database (each a
    path or a postgresql:// URL): a job moves between SQLite and PostgreSQL."""
    with _open_existing(source) as src:
        where, copied = copy_store(src, destination)
    rows = ", ".join(f"{n} {table}" for table, n in copied.items() if n)
    click.echo(f"copied into {where}: {rows or 'nothing'}")


main.add_command(dashboard)
main.add_command(_stress.stress)
main.add_command(_stress.suite)
main.add_command(_stress.report)
