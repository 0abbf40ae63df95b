"""Starting, checking, restarting and killing the browser; logins; what it showed on errors."""

from enduro.session._processes import kill_group, process_alive, reap_dead_runs
from enduro.session._recorder import FlightRecorder
from enduro.session._selenium import CHROMIUM_FLAGS, BrowserSession, ProcessRegistry, find_browser
from enduro.session._signals import collect_signals, drain_logs, logging_options

__all__ = [
    "CHROMIUM_FLAGS",
    "BrowserSession",
    "FlightRecorder",
    "ProcessRegistry",
    "collect_signals",
    "drain_logs",
    "find_browser",
    "kill_group",
    "logging_options",
    "process_alive",
    "reap_dead_runs",
]
