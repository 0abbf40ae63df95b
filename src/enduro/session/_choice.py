"""Which browser backend a run gets: the settings' choice, the job's pin, the Grid."""

from __future__ import annotations

from typing import TYPE_CHECKING

from enduro.errors import UsageError
from enduro.session._backend import BrowserBackend
from enduro.session._grid import GridSession
from enduro.session._playwright import PlaywrightSession
from enduro.session._selenium import BrowserSession
from enduro.settings import Settings

if TYPE_CHECKING:
    from enduro.job import Job

__all__ = ["BACKENDS", "backend_for", "backend_name"]

BACKENDS = ("selenium", "playwright")


def backend_name(settings: Settings, job: Job | None = None) -> str:
    """The backend a run of ``job`` drives its browsers with: ``--backend`` /
    ``ENDURO_BACKEND`` if given, else the one the job pins, else Selenium.

    Raises:
        UsageError: the setting and the job's pin disagree, or Playwright was asked
            of a Selenium Grid.
    """
    pinned = job.backend if job is not None else None
    name = settings.backend or pinned or "selenium"
    if pinned is not None and name != pinned:
        raise UsageError(
            f"job {job.name!r} is written for the {pinned} backend (Job(backend={pinned!r})), "  # type: ignore[union-attr]
            f"but the run asks for {name}",
            f"drop --backend / ENDURO_BACKEND, or give --backend {pinned}",
        )
    if name == "playwright" and settings.grid_url:
        raise UsageError(
            "the Playwright backend drives a local Chromium; --grid / ENDURO_GRID_URL is "
            "for Selenium",
            "drop --grid, or run with --backend selenium",
        )
    return name


def backend_for(settings: Settings, job: Job | None = None) -> type[BrowserBackend]:
    """The browser backend class for a run (see :func:`backend_name`): Playwright's,
    a Selenium Grid's when a Grid URL is set, else local Selenium."""
    if backend_name(settings, job) == "playwright":
        return PlaywrightSession
    return GridSession if settings.grid_url else BrowserSession
