"""The one exception that ends a run on purpose."""

from __future__ import annotations

from enduro.errors import EnduroError

__all__ = ["HaltRun"]


class HaltRun(EnduroError):
    """Going on would be wrong (the browser won't start, logins keep failing,
    the site stays down); the run stops with this reason and a resume hint."""
