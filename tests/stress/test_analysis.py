"""The verdict from results: each criterion fails when what it measures is broken."""

from __future__ import annotations

import pytest

from enduro.report import CriterionId, InjectionStats, Integrity, Leak, StressTestResults
from enduro.stress.analysis import EndpointReaction, Turn, retry_after_violations
from enduro.stress.scenario import LENIENT, PRESETS
from enduro.stress.site import RequestLogEntry
from enduro.stress.verdict import judge, recommendations

LIGHT = PRESETS["light"]


def _good() -> StressTestResults:
    pages = LIGHT.pages
    return StressTestResults(
        scenario="light",
        pages_total=pages,
        pages_done=pages,
        success_rate=1.0,
        attempts=pages + 4,
        errors=4,
        error_rate=4 / (pages + 4),
        injected_per_type={
            kind: InjectionStats(planned=1, delivered=1, recovery_p95=1.5) for kind in LIGHT.faults
        },
        integrity=Integrity(expected=500, found=500),
    )


def test_a_clean_run_is_go() -> None:
    verdict = judge(_good(), LIGHT)
    assert verdict.go, [c.name for c in verdict.failed]
    assert {c.name for c in verdict.criteria} >= {
        "completion",
        "records lost",
        "critical failures",
        "faults delivered",
        "Retry-After honoured",
    }


@pytest.mark.parametrize(
    ("breakage", "criterion"),
    [
        ({"integrity": Integrity(expected=500, found=450, lost=50)}, "records lost"),
        ({"integrity": Integrity(expected=500, found=510, duplicated=10)}, "records duplicated"),
        ({"integrity": Integrity(expected=500, found=500, corrupted=3)}, "records corrupted"),
        ({"pages_done": 8, "success_rate": 0.8}, "completion"),
        (
            {"critical_failures": 1, "critical": ["browser_crash i0002: no page after"]},
            "critical failures",
        ),
        ({"retry_after_violations": ["/matches?page=3 0.10s after a 429"]}, "Retry-After honoured"),
        ({"stopped_early": "time budget spent"}, "ran to the end"),
        ({"leak": Leak(runner_rss_mb_per_1000_pages=250.0)}, "runner memory growth"),
        ({"leak": Leak(browser_pss_mb_per_1000_pages=180.0, r2=0.9)}, "browser memory growth"),
    ],
)
def test_each_breakage_is_no_go_naming_its_criterion(
    breakage: dict[str, object], criterion: str
) -> None:
    results = _good().model_copy(update=breakage)
    verdict = judge(results, LIGHT)
    assert not verdict.go
    assert criterion in [c.name for c in verdict.failed]
    assert verdict.recommendations


def test_a_leak_too_sparse_to_fit_is_shown_as_not_judged() -> None:
    verdict = judge(_good(), LIGHT)  # no leak estimate at all
    growth = {c.name: c for c in verdict.criteria if c.name.endswith("memory growth")}
    assert set(growth) == {"browser memory growth", "runner memory growth"}
    for c in growth.values():  # neither passed nor failed: not judged, saying why
        assert (c.judged, c.passed, c.result) == (False, True, "not judged")
        assert "too few samples" in c.detail
    assert verdict.judged == len(verdict.criteria) - 3  # and the error rate, of 14 attempts


@pytest.mark.parametrize(
    ("leak", "name"),
    [
        (Leak(browser_pss_mb_per_1000_pages=326.2, r2=0.08), "browser memory growth"),
        (Leak(runner_rss_mb_per_1000_pages=250.0, runner_r2=0.2), "runner memory growth"),
    ],
)
def test_a_steep_growth_through_scattered_samples_is_not_judged(leak: Leak, name: str) -> None:
    # the production run's browser: lifetimes of ~150 pages between restarts, PSS
    # rising and falling by tens of MB; a line through that explains 8% of it
    verdict = judge(_good().model_copy(update={"leak": leak}), LIGHT)
    growth = next(c for c in verdict.criteria if c.name == name)
    assert (growth.judged, growth.passed, growth.result) == (False, True, "not judged")
    assert "scatter, not a trend" in growth.detail
    assert verdict.go
    # the same slope on a line that explains the samples is growth
    trend = leak.model_copy(update={"r2": 0.9, "runner_r2": 0.9})
    failed = judge(_good().model_copy(update={"leak": trend}), LIGHT).failed
    assert name in [c.name for c in failed]


def test_error_rate_is_judged_only_past_the_minimum_sample() -> None:
    few = _good().model_copy(update={"attempts": 20, "errors": 15, "error_rate": 0.75})
    verdict = judge(few, LIGHT)
    assert verdict.go  # 20 attempts: too few to judge
    rate = next(c for c in verdict.criteria if c.id == "error_rate")
    assert (rate.judged, rate.result) == (False, "not judged")
    assert rate.detail == "20 attempts, fewer than 50"
    many = few.model_copy(update={"attempts": 200, "errors": 150})
    assert "error rate" in [c.name for c in judge(many, LIGHT).failed]


def test_lenient_profile_forgives_what_the_strict_bar_does_not() -> None:
    results = _good().model_copy(
        update={"pages_done": 9, "success_rate": 0.9, "integrity": Integrity(lost=50)}
    )
    assert not judge(results, LIGHT).go
    lenient = LIGHT.model_copy(update={"criteria": LENIENT})
    assert judge(results, lenient).go


def test_requests_inside_a_retry_after_window_are_found() -> None:
    def get(at: float, path: str, status: int = 200, **fault: str) -> RequestLogEntry:
        return RequestLogEntry(at=at, method="GET", path=path, status=status, **fault)

    log = [
        get(10.0, "/matches?page=3", 429, fault_id="f1", fault_kind="rate_limit"),
        get(10.1, "/matches?page=4"),  # another worker's page, sent before the runner knew
        get(10.3, "/api/matches?page=4"),  # that page's own data call
        get(11.0, "/matches?page=5"),  # a new page after the runner knew: a violation
        get(12.5, "/matches?page=3"),  # after the window
    ]
    assert retry_after_violations(log, 2.0, reactions=[10.2]) == [
        "/matches?page=5 1.00s after a 429 on /matches?page=3"
    ]
    # a runner that never reacted knew from the answer on
    assert retry_after_violations(log, 2.0) == [
        "/matches?page=4 0.10s after a 429 on /matches?page=3",
        "/matches?page=5 1.00s after a 429 on /matches?page=3",
    ]
    assert retry_after_violations(log[:3] + log[4:], 2.0, reactions=[10.2]) == []


def test_an_answer_the_tester_cut_off_by_killing_the_browser_is_not_judged() -> None:
    def get(at: float, path: str, status: int = 200, **fault: str) -> RequestLogEntry:
        return RequestLogEntry(at=at, method="GET", path=path, status=status, **fault)

    log = [
        get(10.0, "/matches?page=9", 429, fault_id="f1", fault_kind="rate_limit"),
        get(11.2, "/matches?page=1"),  # the next browser's login lands here
    ]
    violation = ["/matches?page=1 1.20s after a 429 on /matches?page=9"]
    # the browser was killed 20 ms after the 429 went out: nobody could read it ...
    assert retry_after_violations(log, 2.0, unread=[10.02]) == []
    # ... nor 90 ms before it: the answer went to a request of the dead browser
    assert retry_after_violations(log, 2.0, unread=[9.91]) == []
    # a kill long after the answer excuses nothing, nor one long before it ...
    assert retry_after_violations(log, 2.0, unread=[11.1]) == violation
    assert retry_after_violations(log, 2.0, unread=[8.5]) == violation
    # ... nor a kill after the runner had read the answer
    assert retry_after_violations(log, 2.0, reactions=[10.01], unread=[10.02]) == violation


def test_every_criterion_has_a_stable_id() -> None:
    results = _good().model_copy(update={"attempts": 200})
    criteria = judge(results, LIGHT).criteria
    assert all(c.id in set(CriterionId) for c in criteria)
    keys = [(c.id, c.fault) for c in criteria]
    assert len(keys) == len(set(keys))
    assert {c.id for c in criteria} == set(CriterionId)  # each kind of criterion, once judged
    recovery = [c for c in criteria if c.id == CriterionId.RECOVERY_P95]
    assert {c.fault for c in recovery} == set(LIGHT.faults)
    assert all(c.name == f"recovery p95: {c.fault}" for c in recovery)


def test_advice_is_matched_on_ids_not_on_display_names() -> None:
    slow = _good()
    slow.injected_per_type["tab_crash"] = InjectionStats(planned=1, delivered=1, recovery_p95=99.0)
    verdict = judge(slow, LIGHT)
    (failed,) = verdict.failed
    assert (failed.id, failed.fault) == (CriterionId.RECOVERY_P95, "tab_crash")
    renamed = failed.model_copy(update={"name": "Erholung (p95)"})
    advice = recommendations(slow, [renamed], LIGHT)
    assert advice == [
        "recovery from tab_crash takes 99.0s at p95 (limit 60.0s): look at the events of that "
        "fault type"
    ]


def test_a_request_of_a_turn_taken_before_the_runner_knew_was_on_its_way() -> None:
    """Several runners: one took its turn a moment before another stored the hold, so
    its request reached the site a moment after; its own record of the turn says so."""

    def get(at: float, path: str, status: int = 200, **fault: str) -> RequestLogEntry:
        return RequestLogEntry(at=at, method="GET", path=path, status=status, **fault)

    log = [
        get(10.0, "/matches?page=3", 429, fault_id="f1", fault_kind="rate_limit"),
        get(10.21, "/matches?page=4"),  # page 4's turn came at 10.19, before the hold
        get(10.22, "/matches?page=4"),  # a second load of it: not that turn's
        get(10.5, "/login"),  # a login whose turn came at 10.15
        get(10.6, "/login"),
        get(10.61, "/matches?page=1"),  # where it landed
        get(10.62, "/matches?page=1"),  # one more: no login sends four
        get(10.7, "/matches?page=6"),  # page 6's turn came after the hold: a violation
    ]
    turns = [
        Turn(10.19, 10.4, "4"),
        Turn(10.15, 10.65),
        Turn(10.3, 10.8, "6"),
        Turn(9.0, 9.5, "2"),  # an earlier page, long done
    ]
    found = retry_after_violations(log, 2.0, reactions=[10.2], turns=turns)
    assert found == [
        "/matches?page=4 0.22s after a 429 on /matches?page=3",
        "/matches?page=1 0.62s after a 429 on /matches?page=3",
        "/matches?page=6 0.70s after a 429 on /matches?page=3",
    ]
    # without the runners' records of their turns, every one of them is a violation
    assert len(retry_after_violations(log, 2.0, reactions=[10.2])) == len(log) - 1


def test_the_other_runners_requests_on_their_way_when_they_met_a_hold_are_allowed() -> None:
    def get(at: float, path: str, status: int = 200, **fault: str) -> RequestLogEntry:
        return RequestLogEntry(at=at, method="GET", path=path, status=status, **fault)

    badge = "/api/v2/matches/M{}A9C0B1D2/badge"
    log = [
        get(10.0, badge.format(1), 503, fault_id="f1", fault_kind="maintenance"),
        get(10.03, badge.format(2)),  # another runner's, on its way
        get(10.05, badge.format(3)),  # another's again
        get(10.9, badge.format(4)),  # sent after every runner knew: a violation
    ]
    reactions = [EndpointReaction(10.01, "/api/v2/matches/{id}/badge", 0)]
    assert len(retry_after_violations(log, 2.0, endpoint_reactions=reactions)) == 3
    seen = [  # two runners' turns before the hold began; the late one does not count
        EndpointReaction(10.02, "/api/v2/matches/{id}/badge", began=False, turns=(10.0,)),
        EndpointReaction(10.04, "/api/v2/matches/{id}/badge", began=False, turns=(9.99, 10.02)),
        EndpointReaction(10.04, "/api/v2/matches/{id}/relationship", began=False, turns=(10.0,)),
    ]
    assert retry_after_violations(log, 2.0, endpoint_reactions=reactions + seen) == [
        "/api/v2/matches/M4A9C0B1D2/badge 0.90s after a 503 on /api/v2/matches/M1A9C0B1D2/badge"
    ]
