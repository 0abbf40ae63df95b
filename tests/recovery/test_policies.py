"""Tests for recovery policies: each default, the budgets, cool-downs and overrides."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from enduro.errors import CATEGORIES
from enduro.recovery import (
    DEFAULT_POLICIES,
    Classification,
    CoolDown,
    Decision,
    Halt,
    Policy,
    RecoveryPolicies,
    Refresh,
    Relogin,
    Restart,
    Retry,
    Skip,
)
from enduro.settings import RECOVERY_ACTIONS, Settings


def _policies(**settings: Any) -> RecoveryPolicies:
    return RecoveryPolicies(Settings(**settings), random.Random(1))


def _found(category: str, retry_after: float | None = None) -> Classification:
    return Classification(category, f"{category} happened", retry_after=retry_after)


def _near(value: float | None, raw: float) -> bool:
    """Within the default backoff jitter (±12.5%) of ``raw``."""
    return value is not None and raw * 0.875 <= value <= raw * 1.125


# category: (charge, actions, restart, relogin, refresh, backoff?)
DEFAULTS = {
    "network": ("infra", ("retry",), False, False, False, True),
    "rate_limited": ("infra", ("cooldown", "retry"), False, False, False, True),
    "server_error": ("page", ("retry",), False, False, False, True),
    "browser_crash": ("infra", ("restart", "retry"), True, False, False, False),
    "driver_dead": ("infra", ("restart", "retry"), True, False, False, False),
    "page_crash": ("infra", ("restart", "retry"), True, False, False, False),
    "element": ("page", ("refresh", "retry"), False, False, True, False),
    "javascript": ("page", ("refresh", "retry"), False, False, True, True),
    "auth_lost": ("infra", ("relogin", "retry"), False, True, False, False),
    "memory_pressure": ("infra", ("restart", "retry"), True, False, False, True),
    "timeout": ("page", ("restart", "retry"), True, False, False, True),
    "handler_bug": ("page", ("retry",), False, False, False, True),
    "bad_response": ("page", ("retry",), False, False, False, True),
    "unknown": ("page", ("retry",), False, False, False, True),
}


@pytest.mark.parametrize("category", sorted(DEFAULTS))
def test_default_decision_on_a_first_failure(category: str) -> None:
    charge, actions, restart, relogin, refresh, backoff = DEFAULTS[category]

    decision = _policies(backoff_base=2.0, cooldown_default=0.5).decide(
        _found(category), attempts=0, recoveries=0
    )

    assert decision.category == category
    assert decision.charge == charge
    assert decision.actions == actions
    assert (decision.restart, decision.relogin, decision.refresh) == (restart, relogin, refresh)
    assert not decision.final
    assert decision.halt == ""
    if backoff:
        assert _near(decision.retry_in, 2.0)
    else:
        assert decision.retry_in == 0.0


def test_every_category_has_a_default_policy() -> None:
    assert set(DEFAULT_POLICIES) == set(CATEGORIES)
    assert set(DEFAULTS) | {"fatal"} == set(CATEGORIES)


def test_fatal_halts_the_run_without_failing_the_page() -> None:
    decision = _policies().decide(
        Classification("fatal", "Fatal: no password"), attempts=0, recoveries=0
    )

    assert decision.halt == "fatal: Fatal: no password"
    assert decision.actions == ("halt",)
    assert not decision.final
    assert not (decision.restart or decision.relogin or decision.refresh)


# --- budgets ----------------------------------------------------------------------


@dataclass
class _Page:
    """A page's ledger, charged the way the store charges it."""

    attempts: int = 0
    recoveries: int = 0

    def fail(self, policies: RecoveryPolicies, category: str) -> Decision:
        decision = policies.decide(
            _found(category), attempts=self.attempts, recoveries=self.recoveries
        )
        if decision.charge == "page":
            self.attempts += 1
        else:
            self.recoveries += 1
        return decision


def test_browser_crashes_never_charge_the_pages_attempts() -> None:
    policies = _policies(max_attempts=2, max_recoveries=10)
    page = _Page()

    decisions = [page.fail(policies, "browser_crash") for _ in range(5)]

    assert page.attempts == 0
    assert not any(d.final for d in decisions)
    # The page still has its whole page budget for errors about itself.
    assert not page.fail(policies, "element").final
    assert page.fail(policies, "element").final


def test_the_infra_cap_ends_a_page_that_always_kills_the_tab() -> None:
    policies = _policies(max_recoveries=4)
    page = _Page()

    decisions = [page.fail(policies, "page_crash") for _ in range(4)]

    assert [d.final for d in decisions] == [False, False, False, True]
    last = decisions[-1]
    assert last.retry_in is None
    assert last.restart  # the browser is still broken: restart it anyway
    assert last.actions == ("restart",)


def test_infra_categories_share_the_recovery_cap() -> None:
    policies = _policies(max_recoveries=3)
    page = _Page()

    assert not page.fail(policies, "network").final
    assert not page.fail(policies, "browser_crash").final
    assert page.fail(policies, "auth_lost").final


def test_page_budget_ends_the_page_at_max_attempts() -> None:
    policies = _policies(max_attempts=3)
    page = _Page()

    decisions = [page.fail(policies, "element") for _ in range(3)]

    assert [d.final for d in decisions] == [False, False, True]
    assert decisions[-1].retry_in is None
    assert not decisions[-1].refresh
    assert decisions[-1].actions == ()


def test_handler_bug_is_final_after_two() -> None:
    policies = _policies(max_attempts=10)
    page = _Page()

    assert [page.fail(policies, "handler_bug").final for _ in range(2)] == [False, True]


def test_handler_bug_attempts_come_from_settings() -> None:
    policies = _policies(max_attempts=10, handler_bug_attempts=4)

    assert policies.policy("handler_bug").attempts == 4
    assert not policies.decide(_found("handler_bug"), attempts=2, recoveries=0).final
    assert policies.decide(_found("handler_bug"), attempts=3, recoveries=0).final


def test_unknown_is_final_after_unknown_attempts() -> None:
    policies = _policies(max_attempts=10, unknown_attempts=3)
    page = _Page()

    assert [page.fail(policies, "unknown").final for _ in range(3)] == [False, False, True]


def test_an_unknown_category_name_gets_the_unknown_policy() -> None:
    policies = _policies(unknown_attempts=2)

    assert policies.policy("no_such_category") == policies.policy("unknown")
    decision = policies.decide(_found("no_such_category"), attempts=1, recoveries=0)
    assert decision.final
    assert decision.category == "no_such_category"


def test_backoff_grows_with_the_charged_budget() -> None:
    policies = _policies(backoff_base=1.0, backoff_max=1000.0, max_attempts=10, max_recoveries=10)

    timeouts = [policies.decide(_found("timeout"), attempts=n, recoveries=0) for n in range(4)]
    network = policies.decide(_found("network"), attempts=0, recoveries=3)

    assert all(_near(d.retry_in, 2.0**n) for n, d in enumerate(timeouts))
    assert _near(network.retry_in, 8.0)  # infra: backoff on recoveries, not attempts


def test_backoff_is_capped_and_replays_with_a_seed() -> None:
    one = RecoveryPolicies(Settings(backoff_max=5.0, max_attempts=50), random.Random(3))
    two = RecoveryPolicies(Settings(backoff_max=5.0, max_attempts=50), random.Random(3))

    first = [one.decide(_found("timeout"), attempts=n, recoveries=0).retry_in for n in range(20)]

    assert first == [
        two.decide(_found("timeout"), attempts=n, recoveries=0).retry_in for n in range(20)
    ]
    assert max(d or 0.0 for d in first) <= 5.0 * 1.125


# --- cool-downs ---------------------------------------------------------------------


def test_rate_limit_cools_down_for_retry_after() -> None:
    decision = _policies(backoff_base=1.0).decide(
        _found("rate_limited", retry_after=30.0), attempts=0, recoveries=0
    )

    assert decision.cooldown == 30.0
    assert decision.retry_in is not None and decision.retry_in >= 30.0


def test_rate_limit_without_retry_after_cools_down_for_the_default() -> None:
    decision = _policies(cooldown_default=12.0).decide(
        _found("rate_limited"), attempts=0, recoveries=0
    )

    assert decision.cooldown == 12.0
    assert decision.retry_in is not None and decision.retry_in >= 12.0


def test_retry_in_is_the_longer_of_backoff_and_cool_down() -> None:
    policies = _policies(backoff_base=1.0, backoff_max=60.0)

    decision = policies.decide(_found("rate_limited", retry_after=2.0), attempts=0, recoveries=6)

    assert decision.cooldown == 2.0
    assert _near(decision.retry_in, 60.0)


def test_server_error_cools_down_only_when_told_how_long() -> None:
    policies = _policies(backoff_base=1.0, cooldown_default=99.0)

    told = policies.decide(_found("server_error", retry_after=45.0), attempts=0, recoveries=0)
    untold = policies.decide(_found("server_error"), attempts=0, recoveries=0)

    assert (told.cooldown, told.actions) == (45.0, ("cooldown", "retry"))
    assert told.retry_in is not None and told.retry_in >= 45.0
    assert (untold.cooldown, untold.actions) == (0.0, ("retry",))
    assert _near(untold.retry_in, 1.0)


def test_a_final_page_still_cools_the_site_down() -> None:
    decision = _policies(max_recoveries=1).decide(
        _found("rate_limited", retry_after=20.0), attempts=0, recoveries=0
    )

    assert decision.final
    assert decision.cooldown == 20.0
    assert decision.actions == ("cooldown",)


# --- overrides ----------------------------------------------------------------------


def test_override_skip() -> None:
    decision = _policies(recovery={"element": "skip"}).decide(
        _found("element"), attempts=0, recoveries=0
    )

    assert decision.final
    assert decision.retry_in is None
    assert decision.actions == ("skip",)
    assert decision.charge == "page"


def test_override_actions_and_budget() -> None:
    policies = _policies(recovery={"timeout": "restart,retry_now@infra"}, max_recoveries=2)

    assert policies.policy("timeout") == Policy((Restart(), Retry(backoff=False)), "infra")
    first = policies.decide(_found("timeout"), attempts=0, recoveries=0)
    assert (first.charge, first.restart, first.retry_in, first.final) == ("infra", True, 0.0, False)
    assert policies.decide(_found("timeout"), attempts=0, recoveries=1).final


def test_override_attempts() -> None:
    policies = _policies(recovery={"unknown": "retry:5"}, unknown_attempts=3)

    assert policies.policy("unknown") == Policy((Retry(),), "page", attempts=5)
    assert not policies.decide(_found("unknown"), attempts=3, recoveries=0).final
    assert policies.decide(_found("unknown"), attempts=4, recoveries=0).final


def test_override_keeps_the_default_budget_and_attempts() -> None:
    policies = _policies(recovery={"handler_bug": "refresh,retry", "network": "retry_now"})

    assert policies.policy("handler_bug") == Policy((Refresh(), Retry()), "page", attempts=2)
    assert policies.policy("network") == Policy((Retry(backoff=False),), "infra")


def test_override_halt() -> None:
    decision = _policies(recovery={"auth_lost": "halt"}).decide(
        Classification("auth_lost", "AuthLost: login form shown"), attempts=0, recoveries=0
    )

    assert decision.halt == "auth_lost: AuthLost: login form shown"


def test_every_action_name_parses_to_its_action() -> None:
    parsed = {name: Policy.parse(name).actions for name in RECOVERY_ACTIONS}

    assert parsed == {
        "retry": (Retry(),),
        "retry_now": (Retry(backoff=False),),
        "refresh": (Refresh(),),
        "restart": (Restart(),),
        "relogin": (Relogin(),),
        "cooldown": (CoolDown(),),
        "skip": (Skip(),),
        "halt": (Halt(),),
    }


def test_overrides_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENDURO_RECOVERY", '{"element": "skip", "timeout": "restart,retry@infra"}')

    policies = RecoveryPolicies(Settings())

    assert policies.policy("element") == Policy((Skip(),), "page")
    assert policies.policy("timeout").budget == "infra"


@pytest.mark.parametrize(
    ("recovery", "names"),
    [
        ({"elemnt": "skip"}, ["'elemnt'", "element", "memory_pressure"]),
        ({"element": "jump"}, ["'element'", "'jump'", "retry_now", "cooldown"]),
        ({"element": "restart,retyr"}, ["'retyr'", "retry"]),
        ({"element": "retry@site"}, ["'site'", "page, infra"]),
        ({"element": "retry:0"}, ["'0'", ">= 1"]),
        ({"element": "retry:many"}, ["'many'"]),
        ({"element": ""}, ["'element'", "no action"]),
    ],
)
def test_bad_overrides_are_refused_with_what_is_allowed(
    recovery: dict[str, str], names: list[str]
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(recovery=recovery)

    text = str(caught.value)
    for name in names:
        assert name in text


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one action"):
        Policy((), "page")
    with pytest.raises(ValueError, match="budget"):
        Policy((Retry(),), "site")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="attempts"):
        Policy((Retry(),), "page", attempts=0)
