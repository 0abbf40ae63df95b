"""The run's event stream: the store first, then whoever subscribed."""

from __future__ import annotations

from pathlib import Path

import pytest

from enduro._secrets import Redactor
from enduro.runner import RunEvent, RunEvents, store_listener
from enduro.store import Store


def test_events_reach_the_store_and_every_listener_redacted(tmp_path: Path) -> None:
    seen: list[RunEvent] = []
    with Store.open(tmp_path / "s.db") as store:
        events = RunEvents("run-1", "j", Redactor(["s3cret-token"]), clock=lambda: 42.0)
        events.subscribe(store_listener(store))
        events.subscribe(seen.append)

        events.emit("relogin", "sent s3cret-token again", category="auth_lost", page_key="7")

        (stored,) = store.events(job="j")
        assert (stored["kind"], stored["ts"], stored["run_id"], stored["page_key"]) == (
            "relogin",
            42.0,
            "run-1",
            "7",
        )
        assert "s3cret-token" not in stored["message"]
        assert [(e.kind, e.message) for e in seen] == [("relogin", stored["message"])]


def test_a_failing_hook_does_not_stop_the_run_but_the_store_must_not_fail(
    tmp_path: Path,
) -> None:
    seen: list[str] = []

    def broken(event: RunEvent) -> None:
        raise RuntimeError("a user's hook is broken")

    events = RunEvents("run-1", "j", Redactor(()), clock=lambda: 1.0)
    events.subscribe(lambda event: seen.append(event.kind))
    events.subscribe(broken)
    events.subscribe(lambda event: seen.append(event.kind + "!"))
    events.emit("restart")
    assert seen == ["restart", "restart!"]

    first_fails = RunEvents("run-1", "j", Redactor(()), clock=lambda: 1.0)
    first_fails.subscribe(broken)  # the store's place: its failure is the run's
    with pytest.raises(RuntimeError):
        first_fails.emit("restart")
