"""What the CLI shows: the progress bar and the end-of-run summary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from enduro.report import error_lines
from enduro.runner import Progress as RunProgress
from enduro.runner import RunResult
from enduro.store import Store

__all__ = ["print_summary", "progress_bar"]


@contextmanager
def progress_bar(console: Console, label: str) -> Iterator[ProgressHook]:
    """A rich progress bar fed by the runner's ``on_progress`` callback."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>6.1f} pages/s"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        TextColumn("restarts {task.fields[restarts]}  errors {task.fields[errors]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(label, total=None, rate=0.0, restarts=0, errors=0)
        yield ProgressHook(bar, task)


class ProgressHook:
    """Turns runner progress snapshots into progress-bar updates."""

    def __init__(self, bar: Progress, task: TaskID) -> None:
        self._bar = bar
        self._task = task

    def __call__(self, progress: RunProgress) -> None:
        elapsed = max(time.monotonic() - progress.started_at, 1e-6)
        self._bar.update(
            self._task,
            total=progress.total or None,
            completed=progress.done + progress.failed,
            rate=progress.done_this_run / elapsed,
            restarts=progress.restarts,
            errors=progress.errors,
        )


def print_summary(console: Console, result: RunResult, store: Store, job: str) -> None:
    """The end-of-run summary table."""
    progress = result.progress
    elapsed = time.monotonic() - progress.started_at
    counts = result.counts
    table = Table(title=f"enduro run {result.run_id}: {result.status}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("pages done", f"{counts['done']} / {counts['total']}")
    table.add_row("pages failed", str(counts["failed"]))
    table.add_row("pages still to do", str(counts["pending"] + counts["leased"]))
    table.add_row("records", str(store.record_count(job)))
    table.add_row("this run", f"{progress.done_this_run} pages in {elapsed:.1f}s")
    rate = progress.done_this_run / elapsed if elapsed > 0 else 0.0
    table.add_row("rate", f"{rate:.2f} pages/s")
    table.add_row("browser restarts", str(progress.restarts))
    errors = store.error_counts(job)
    table.add_row(
        "errors",
        ", ".join(f"{cat} {n}" for cat, n in sorted(errors.items())) if errors else "none",
    )
    lines = error_lines(store.top_errors(job))
    if lines:
        table.add_row("most frequent", escape("\n".join(lines)))
    moved = store.event_counts(job).get("key_moved", 0)
    if moved:
        table.add_row("record keys moved", f"{moved} (kept once, under the later page)")
    table.add_row("store", escape(store.location))
    table.add_row("outcome", escape(result.reason))
    console.print(table)
