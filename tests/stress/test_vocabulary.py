"""One fault vocabulary: the table covers every scenario type and every site kind, and
what the scenario, the injector and the analysis use is read from it."""

from __future__ import annotations

import pytest

from enduro.errors import CATEGORIES
from enduro.stress import scenario
from enduro.stress.injector import FailureInjector
from enduro.stress.site.faults import FAULT_KINDS
from enduro.stress.vocabulary import (
    BROWSER_PAGE_FAULTS,
    FAULT_TYPES,
    FAULTS,
    HYBRID_SITE_KINDS,
    JOB_FAULTS,
    JOB_SUBSTITUTES,
    LAYERS,
    SITE_FAULT_TYPES,
    SITE_KINDS,
    fault_type_of,
)


def test_every_scenario_fault_type_has_a_row_and_a_way_in() -> None:
    assert tuple(FAULTS) == FAULT_TYPES
    assert scenario.FAULT_TYPES is FAULT_TYPES  # the scenario names the table's types
    for name, spec in FAULTS.items():
        assert spec.type == name
        # delivered by the tester, or by the site on at least one of the jobs
        assert (spec.delivery == "site") == (spec.layer is None), name
        assert spec.layer is not None or spec.site_kinds or spec.hybrid_kinds, name
        assert (spec.delivery in ("kill", "devtools", "database")) == bool(spec.target), name


def test_every_site_fault_kind_stands_for_exactly_one_fault_type() -> None:
    served = [kind for spec in FAULTS.values() for kind in {*spec.site_kinds, *spec.hybrid_kinds}]
    assert sorted(served) == sorted(set(served)), "a kind serves two fault types"
    assert set(served) == set(FAULT_KINDS)
    assert set(SITE_FAULT_TYPES) == set(FAULT_KINDS)
    for kind in FAULT_KINDS:
        assert (
            kind
            in FAULTS[fault_type_of(kind)].site_kinds + FAULTS[fault_type_of(kind)].hybrid_kinds
        )


def test_expected_categories_are_error_categories() -> None:
    for spec in FAULTS.values():
        assert set(spec.categories) <= set(CATEGORIES), spec.type
    # the faults the runner meets without a page error: resumed, paused, waited out
    quiet = {n for n, s in FAULTS.items() if not s.categories}
    assert quiet == {"runner_crash", "memory_pressure", "database_restart"}


def test_the_derived_lists_follow_the_table() -> None:
    assert JOB_FAULTS == (
        "browser_crash",
        "driver_crash",
        "tab_crash",
        "network_timeout",
        "memory_pressure",
        "runner_crash",
        "database_restart",
        "cookie_wipe",
    )
    assert BROWSER_PAGE_FAULTS == ("element_not_found", "javascript_error")
    assert dict(JOB_SUBSTITUTES) == {"auth_loss": "cookie_wipe"}
    assert set(LAYERS) == set(JOB_FAULTS)
    assert "latency" not in {kind for kinds in SITE_KINDS.values() for kind in kinds}
    assert HYBRID_SITE_KINDS["auth_loss"] == ("session_expiry", "csrf_rotation")


@pytest.mark.parametrize("hybrid", [False, True])
def test_the_injector_pins_each_named_type_on_the_kinds_the_table_gives(hybrid: bool) -> None:
    config = scenario.PRESETS["production"]
    if hybrid:
        config = scenario.for_hybrid(config)
    schedule = FailureInjector(config).schedule()
    for pin in schedule.site_injections:
        assert pin.params["kind"] in FAULTS[pin.type].kinds(hybrid=hybrid)
    for injection in schedule.injections:
        assert injection.layer == FAULTS[injection.type].layer
