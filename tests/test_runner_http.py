"""The runner's side of ctx.http that needs no browser: learned endpoint rates, saved counts."""

from __future__ import annotations

from pathlib import Path

from enduro import Job, Runner, Settings, Store


def _job() -> Job:
    return Job(name="j", pages=[1], handler=lambda ctx: [], site="http://127.0.0.1:9")


def test_learned_endpoint_rates_are_restored_and_saved_when_they_change(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        store.set_state("j", "rate:/api/v2/matches", "3.5")
        store.set_state("j", "rate:/api/v2/matches/{id}/badge", "unlimited")
        store.set_state("j", "rate", "2.0")  # the page limiter's: not an endpoint's
        runner = Runner(_job(), store, Settings(store=path, monitor_interval=0))

        assert runner._endpoints.get("/api/v2/matches").rate == 3.5
        assert runner._endpoints.get("/api/v2/matches/{id}/badge").rate is None
        assert runner._endpoints.rates() == {
            "/api/v2/matches": 3.5,
            "/api/v2/matches/{id}/badge": None,
        }
        runner._endpoints.get("/api/v2/matches").throttled()  # a 429: the rate is cut
        runner._endpoints.get("/api/v2/other")  # new, unlimited: saved as such
        runner._save_endpoint_rates()

        assert store.states("j", "rate:") == {
            "rate:/api/v2/matches": "1.75",
            "rate:/api/v2/matches/{id}/badge": "unlimited",
            "rate:/api/v2/other": "unlimited",
        }
        again = Runner(_job(), store, Settings(store=path, monitor_interval=0))
        assert again._endpoints.get("/api/v2/matches").rate == 1.75


def test_request_counts_are_saved_only_when_they_changed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        runner = Runner(_job(), store, Settings(store=path, monitor_interval=0))
        saved: list[dict[str, object]] = []
        save = store.save_http_stats
        store.save_http_stats = lambda run, job, snapshot: (  # type: ignore[method-assign]
            saved.append(snapshot),
            save(run, job, snapshot),
        )[1]
        runner.http_stats.record("/a", 0.01, None, retry=False)
        runner._save_http_stats()
        runner._save_http_stats()  # nothing new: nothing written
        runner.http_stats.record("/a", 0.02, "network", retry=True)
        runner._save_http_stats()

        assert len(saved) == 2
        (counts,) = store.http_stats("j")
        assert counts["/a"]["requests"] == 2 and counts["/a"]["errors"] == {"network": 1}
