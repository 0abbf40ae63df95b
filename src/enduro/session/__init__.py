"""Starting, checking, restarting and killing the browser; the PID registry."""

from enduro.session._processes import kill_group, process_alive, reap_dead_runs
from enduro.session._selenium import CHROMIUM_FLAGS, BrowserSession, ProcessRegistry, find_browser

__all__ = [
    "CHROMIUM_FLAGS",
    "BrowserSession",
    "ProcessRegistry",
    "find_browser",
    "kill_group",
    "process_alive",
    "reap_dead_runs",
]
