"""The failure injector: a seeded, replayable schedule with the counts the scenario asks for."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest

from enduro.stress.injector import OFFLINE_SECONDS, FailureInjector, FaultSchedule, Injection
from enduro.stress.scenario import (
    FAULT_TYPES,
    JOB_FAULTS,
    PRESETS,
    RUNNER_CRASH_SPACING,
    StressTestConfig,
    for_job,
)
from enduro.stress.site.faults import FAULT_KINDS, FAULT_TARGETS, REQUEST_KINDS, FaultPlan
from enduro.stress.vocabulary import LAYERS, SITE_KINDS


def _schedule(name: str, **changes: object) -> FaultSchedule:
    return FailureInjector(PRESETS[name].model_copy(update=changes)).schedule()


def _delivered_per_type(schedule: FaultSchedule) -> Counter[str]:
    return Counter(i.type for i in (*schedule.injections, *schedule.site_injections))


def test_every_fault_type_has_a_layer_or_a_site_kind() -> None:
    for fault_type in FAULT_TYPES:
        assert fault_type in LAYERS or fault_type in SITE_KINDS
    assert set(LAYERS.values()) <= {"browser", "machine", "runner"}
    for kinds in SITE_KINDS.values():
        assert set(kinds) <= set(FAULT_KINDS)
    assert "latency" not in {kind for kinds in SITE_KINDS.values() for kind in kinds}


# --- determinism ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PRESETS))
def test_same_seed_same_schedule(name: str) -> None:
    first = FailureInjector(PRESETS[name]).schedule()
    second = FailureInjector(PRESETS[name].model_copy()).schedule()

    assert first.to_json() == second.to_json()
    assert first == second


@pytest.mark.parametrize("name", list(PRESETS))
def test_another_seed_another_schedule(name: str) -> None:
    one = _schedule(name, seed=1)
    two = _schedule(name, seed=2)

    assert one.seed == 1
    assert two.seed == 2
    assert one.injections != two.injections or one.site_injections != two.site_injections
    # and only the placement changed: the counts are the scenario's
    assert one.planned() == two.planned()


def test_json_round_trip() -> None:
    schedule = _schedule("production", seed=11)
    text = schedule.to_json()
    back = FaultSchedule.from_json(text)

    assert back == schedule
    assert back.to_json() == text
    assert back.planned() == schedule.planned()
    assert back.site_plan().rates == schedule.site_plan().rates


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"format": 1, "seed": 1}', '{"format": 9}'])
def test_from_json_rejects_what_is_not_a_schedule(text: str) -> None:
    with pytest.raises(ValueError, match="schedule"):
        FaultSchedule.from_json(text)


# --- counts ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PRESETS))
def test_planned_counts_are_the_scenarios(name: str) -> None:
    config = PRESETS[name]
    schedule = FailureInjector(config).schedule()

    assert schedule.planned() == config.injection_counts()
    assert schedule.total_planned() == sum(config.injection_counts().values())


def test_light_delivers_every_named_type_by_schedule_or_pin() -> None:
    light = PRESETS["light"]
    schedule = FailureInjector(light).schedule()

    delivered = _delivered_per_type(schedule)
    assert all(delivered[fault] >= 1 for fault in light.faults)
    assert set(delivered) == set(light.faults)
    assert dict(schedule.site_rates) == {}  # 2% of 10 pages: only the guaranteed minimums


def test_production_minimums_are_honoured() -> None:
    schedule = _schedule("production")
    delivered = _delivered_per_type(schedule)

    assert delivered["runner_crash"] >= 3
    assert delivered["browser_crash"] >= 5
    one_machine = [fault for fault in FAULT_TYPES if fault != "database_restart"]
    assert all(delivered[fault] >= 1 for fault in one_machine)
    assert schedule.planned()["runner_crash"] == 3
    assert schedule.planned()["browser_crash"] == 5


def test_layers_and_params() -> None:
    schedule = _schedule("production", memory_hold=7.5)

    for injection in schedule.injections:
        assert injection.layer == LAYERS[injection.type]
    by_type = {i.type: i for i in schedule.injections}
    assert by_type["memory_pressure"].params == {"hold": 7.5}
    assert by_type["network_timeout"].params == {"seconds": OFFLINE_SECONDS}
    assert by_type["network_timeout"].layer == "browser"
    assert by_type["driver_crash"].params["process"] == "chromedriver"
    assert by_type["runner_crash"].layer == "runner"
    for pin in schedule.site_injections:
        assert pin.layer == "site"
        assert pin.params["kind"] in SITE_KINDS[pin.type]
        assert pin.after_pages == pin.params["page"] - 1


def test_a_fleet_s_runner_crashes_name_their_runner_and_its_database_restart_its_hold() -> None:
    schedule = _schedule("fleet", database_hold=4.5)
    crashes = [i for i in schedule.injections if i.type == "runner_crash"]
    restarts = [i for i in schedule.injections if i.type == "database_restart"]

    assert len(crashes) >= 3
    assert all(0 <= i.params["runner"] < 3 and i.params["signal"] == "SIGKILL" for i in crashes)
    assert {i.params["runner"] for i in crashes} == {0, 1, 2}  # each of them, in turn
    assert [(i.layer, i.params) for i in restarts] == [("machine", {"mode": "fast", "hold": 4.5})]
    # one runner: no choice to make, and the schedule stays as it was
    single = _schedule("fleet", runners=1)
    assert all("runner" not in i.params for i in single.injections)
    assert [i.after_pages for i in single.injections] == [
        i.after_pages for i in schedule.injections
    ]
    assert _schedule("fleet").to_json() == _schedule("fleet").to_json()


def test_ids_follow_schedule_order() -> None:
    schedule = _schedule("production")

    assert [i.id for i in schedule.injections] == [
        f"i{n:04d}" for n in range(1, len(schedule.injections) + 1)
    ]
    assert [i.after_pages for i in schedule.injections] == sorted(
        i.after_pages for i in schedule.injections
    )
    assert [i.id for i in schedule.site_injections] == [
        f"s{n:04d}" for n in range(1, len(schedule.site_injections) + 1)
    ]
    pages = [i.params["page"] for i in schedule.site_injections]
    assert pages == sorted(pages)
    assert len(set(pages)) == len(pages)  # distinct pages while there are enough


def test_after_pages_leave_work_after_each_fault() -> None:
    for name in ("light", "medium", "heavy", "production", "endurance"):
        config = PRESETS[name]
        for seed in range(20):
            schedule = _schedule(name, seed=seed)
            assert all(1 <= i.after_pages <= config.pages - 1 for i in schedule.injections)
            assert all(1 <= i.params["page"] <= config.pages for i in schedule.site_injections)


@pytest.mark.parametrize("seed", range(25))
def test_runner_crashes_are_spaced(seed: int) -> None:
    schedule = _schedule("production", seed=seed, pages=20)
    crashes = [i.after_pages for i in schedule.injections if i.type == "runner_crash"]

    assert len(crashes) == 3
    gaps = [b - a for a, b in pairwise(crashes)]
    assert all(gap >= RUNNER_CRASH_SPACING for gap in gaps)


def test_runner_crashes_fill_the_tightest_room() -> None:
    config = PRESETS["production"].model_copy(update={"pages": 6})
    crashes = [
        i.after_pages
        for i in FailureInjector(config).schedule().injections
        if i.type == "runner_crash"
    ]
    assert crashes == [1, 3, 5]


# --- site rates -------------------------------------------------------------------------


def _assert_valid_rates(schedule: FaultSchedule) -> None:
    rates = schedule.site_rates
    assert all(kind in FAULT_KINDS and 0 <= rate <= 1 for kind, rate in rates.items())
    for request in REQUEST_KINDS:
        assert sum(r for k, r in rates.items() if request in FAULT_TARGETS[k]) <= 1
    FaultPlan(seed=schedule.seed, rates=rates)  # raises on invalid rates


@pytest.mark.parametrize("name", list(PRESETS))
def test_site_rates_are_valid_for_the_site(name: str) -> None:
    schedule = _schedule(name)
    _assert_valid_rates(schedule)

    plan = FailureInjector(PRESETS[name]).site_plan()
    assert isinstance(plan, FaultPlan)
    assert plan.seed == PRESETS[name].seed
    assert dict(plan.rates) == dict(schedule.site_rates)
    assert len(plan.schedule) == len(schedule.site_injections)
    assert plan.retry_after == PRESETS[name].retry_after


def test_site_rates_beyond_the_minimum() -> None:
    config = StressTestConfig(
        name="site",
        pages=100,
        duration=60,
        failure_rate=0.3,
        faults=("rate_limiting", "element_not_found", "network_timeout"),
    )
    schedule = FailureInjector(config).schedule()

    # 10 of each type: 1 pinned, 9 at random (element_not_found: 5 stale, 4 missing)
    assert schedule.site_rates["rate_limit"] == pytest.approx(0.09)
    assert schedule.site_rates["missing_element"] == pytest.approx(0.05)
    assert schedule.site_rates["stale_dom"] == pytest.approx(0.04)
    # network_timeout: 4 offline windows (the first channel takes the remainder and
    # the pinned minimum), 3 resets and 3 truncations at random
    assert sum(i.type == "network_timeout" for i in schedule.injections) == 4
    assert schedule.site_rates["reset"] == pytest.approx(0.03)
    assert schedule.site_rates["truncate"] == pytest.approx(0.03)
    assert schedule.planned() == config.injection_counts()
    _assert_valid_rates(schedule)


def test_site_rates_are_capped_per_request_kind() -> None:
    config = StressTestConfig(
        name="flood",
        pages=10,
        duration=60,
        failure_rate=1.0,
        faults=("rate_limiting", "server_error", "auth_loss"),
        weights={"rate_limiting": 10, "server_error": 10, "auth_loss": 10},
    )
    schedule = FailureInjector(config).schedule()

    _assert_valid_rates(schedule)


def test_session_expiry_every_n_pages() -> None:
    schedule = _schedule("light", expire_session_every=5)

    assert schedule.expire_session_every == 5
    assert schedule.planned()["auth_loss"] == 1 + 10 // 5
    assert schedule.site_plan().expire_session_every == 5


def test_pinned_site_faults_are_served_on_their_page() -> None:
    schedule = _schedule("light")
    plan = schedule.site_plan()
    first = {i.params["page"]: i.params["kind"] for i in schedule.site_injections}

    served = {}
    for page in range(1, 11):
        fault = plan.decide(FAULT_TARGETS[first.get(page, "stale_dom")][0], f"/p{page}", page)
        if fault is not None:
            served[page] = fault.kind
    assert served == first


def test_injection_round_trips_through_dict() -> None:
    injection = Injection("i0007", "memory_pressure", "machine", 12, {"hold": 20.0})

    assert Injection.from_dict(injection.to_dict()) == injection
    assert hash(injection) == hash(Injection.from_dict(injection.to_dict()))


def test_a_users_job_gets_no_site_faults_and_alternating_network_windows() -> None:
    config = for_job(PRESETS["production"].model_copy(update={"seed": 3}), "job.py", 724)
    schedule = FailureInjector(config).schedule()
    assert schedule.site_injections == () and dict(schedule.site_rates) == {}
    assert schedule.expire_session_every == 0
    assert {i.type for i in schedule.injections} == set(JOB_FAULTS) - {"database_restart"}
    assert {i.layer for i in schedule.injections} == {"browser", "machine", "runner"}
    counts = Counter(i.type for i in schedule.injections)
    assert counts == config.injection_counts()
    # the site's share went to the faults kept: about 3% of the pages in all
    assert abs(sum(counts.values()) - 0.03 * 724) <= len(JOB_FAULTS)
    windows = Counter(
        "latency" if "latency_ms" in i.params else "offline"
        for i in schedule.injections
        if i.type == "network_timeout"
    )
    assert windows["offline"] >= 1 and windows["latency"] >= 1
    assert abs(windows["offline"] - windows["latency"]) <= 1
