"""What every ``enduro`` command shares: bad input as one line and exit 2, the
console, and the log handler (only the CLI configures logging)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler

from enduro.errors import UsageError

__all__ = ["backend_option", "console", "setup_logging", "usage_errors"]

F = TypeVar("F", bound=Callable[..., Any])


def usage_errors(func: F) -> F:
    """Turn a UsageError into one line on stderr and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UsageError as exc:
            click.echo(exc.format_line(), err=True)
            sys.exit(exc.exit_code)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            click.echo(f"error: invalid setting {where}: {first['msg']}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def console() -> Console:
    """The console commands print progress and summaries on (stderr)."""
    return Console(stderr=True)


def setup_logging(out: Console, verbose: int) -> None:
    """Log through rich on ``out``: warnings, ``-v`` info, ``-vv`` debug."""
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler = RichHandler(console=out, show_path=False, rich_tracebacks=False)
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)
    for noisy in ("urllib3", "selenium", "aiohttp", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


backend_option = click.option(
    "--backend",
    type=click.Choice(["selenium", "playwright"]),
    default=None,
    help="What drives the browser (default: the job's pin, else selenium; "
    "ENDURO_BACKEND for runs).",
)
"""``--backend selenium|playwright`` (``run``, ``demo``, ``stress``, ``suite``)."""
