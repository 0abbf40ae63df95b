"""Category -> what to do: small action objects, one policy per category, one engine.

A :class:`Policy` is a tuple of actions and the budget a failure charges:

- ``page``: the page's own attempts (``max_attempts``, or the policy's ``attempts``);
  for errors about the page itself.
- ``infra``: recoveries of the infrastructure (browser crash, rate limit, network...);
  they do not burn the page's attempts, but ``max_recoveries`` caps them per page so
  a page that always kills the tab still ends failed.

:class:`RecoveryPolicies` turns a :class:`Classification` and the page's counts into
a :class:`Decision` the runner carries out. Users override any category's policy
with ``Settings.recovery`` (``{"element": "skip", "timeout": "restart,retry@infra"}``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Literal, TypeAlias

from enduro.recovery._backoff import Backoff
from enduro.recovery._classify import Classification
from enduro.settings import Settings, parse_recovery_override

__all__ = [
    "DEFAULT_POLICIES",
    "Action",
    "CoolDown",
    "Decision",
    "Halt",
    "Policy",
    "RecoveryPolicies",
    "Refresh",
    "Relogin",
    "Restart",
    "Retry",
    "Skip",
]

Budget: TypeAlias = Literal["page", "infra"]


@dataclass(frozen=True)
class Retry:
    """Try the page again: after a backoff delay that grows with the budget used, or at once."""

    backoff: bool = True


@dataclass(frozen=True)
class Refresh:
    """Drop the page's state (a blank page) before the retry."""


@dataclass(frozen=True)
class Restart:
    """Restart the browser (cookies are carried over)."""


@dataclass(frozen=True)
class Relogin:
    """Log in again through the job's login hook before the next page."""


@dataclass(frozen=True)
class CoolDown:
    """Send no request to the site for Retry-After seconds.

    Args:
        default: without a Retry-After, cool down for ``Settings.cooldown_default``
            (False: only cool down when the site said how long).
    """

    default: bool = True


@dataclass(frozen=True)
class Skip:
    """Mark the page failed with the error and go on."""


@dataclass(frozen=True)
class Halt:
    """Stop the run, giving the error as the reason."""


Action: TypeAlias = Retry | Refresh | Restart | Relogin | CoolDown | Skip | Halt

_NAMES: dict[type[Action], str] = {
    Retry: "retry",
    Refresh: "refresh",
    Restart: "restart",
    Relogin: "relogin",
    CoolDown: "cooldown",
    Skip: "skip",
    Halt: "halt",
}

# The names Settings.recovery overrides use (enduro.settings.RECOVERY_ACTIONS).
_BY_NAME: dict[str, Action] = {
    "retry": Retry(),
    "retry_now": Retry(backoff=False),
    "refresh": Refresh(),
    "restart": Restart(),
    "relogin": Relogin(),
    "cooldown": CoolDown(),
    "skip": Skip(),
    "halt": Halt(),
}


@dataclass(frozen=True)
class Policy:
    """What to do about one category of error.

    Attributes:
        actions: what to do, in order (a policy without Retry, Skip or Halt retries at once).
        budget: which budget a failure charges, ``page`` or ``infra``.
        attempts: the cap of that budget for this category (None: ``max_attempts``
            for ``page``, ``max_recoveries`` for ``infra``).
    """

    actions: tuple[Action, ...]
    budget: Budget
    attempts: int | None = None

    def __post_init__(self) -> None:
        if not self.actions:
            raise ValueError("a policy needs at least one action")
        if self.budget not in ("page", "infra"):
            raise ValueError(f"budget must be 'page' or 'infra', not {self.budget!r}")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, not {self.attempts}")

    @classmethod
    def parse(cls, spec: str, default: Policy | None = None) -> Policy:
        """A policy from an override, ``"restart,retry@infra:5"``.

        Budget and attempts left out come from ``default`` (else ``page`` and None).

        Raises:
            ValueError: the spec names an unknown action or budget, or bad attempts.
        """
        names, budget, attempts = parse_recovery_override(spec)
        return cls(
            actions=tuple(_BY_NAME[name] for name in names),
            budget=budget or (default.budget if default else "page"),
            attempts=attempts if attempts is not None else (default.attempts if default else None),
        )


# attempts=None for handler_bug and unknown: RecoveryPolicies fills in
# Settings.handler_bug_attempts / Settings.unknown_attempts.
DEFAULT_POLICIES: Mapping[str, Policy] = MappingProxyType(
    {
        "network": Policy((Retry(),), "infra"),
        "rate_limited": Policy((CoolDown(), Retry()), "infra"),
        "server_error": Policy((CoolDown(default=False), Retry()), "page"),
        "browser_crash": Policy((Restart(), Retry(backoff=False)), "infra"),
        "driver_dead": Policy((Restart(), Retry(backoff=False)), "infra"),
        "page_crash": Policy((Restart(), Retry(backoff=False)), "infra"),
        "element": Policy((Refresh(), Retry(backoff=False)), "page"),
        "javascript": Policy((Refresh(), Retry()), "page"),
        "auth_lost": Policy((Relogin(), Retry(backoff=False)), "infra"),
        "memory_pressure": Policy((Restart(), Retry()), "infra"),
        "timeout": Policy((Restart(), Retry()), "page"),
        "handler_bug": Policy((Retry(),), "page"),
        "bad_response": Policy((Retry(),), "page", attempts=2),
        "fatal": Policy((Halt(),), "page"),
        "unknown": Policy((Retry(),), "page"),
    }
)
"""Every category's policy unless ``Settings.recovery`` overrides it."""


@dataclass(frozen=True)
class Decision:
    """What the runner does after one failure of one page.

    Attributes:
        category: the error's category.
        actions: the names of the actions that apply, for the event log.
        charge: the budget charged, ``page`` or ``infra``.
        restart: restart the browser.
        relogin: log in again before the next page.
        refresh: drop the page's state before the retry.
        cooldown: seconds no request may reach the site (0: none).
        retry_in: seconds until this page may be tried again (None: the page is final).
        final: the page ends failed (Skip, or its budget is spent).
        halt: non-empty: halt the run; this is the reason.
    """

    category: str
    actions: tuple[str, ...]
    charge: str
    restart: bool
    relogin: bool
    refresh: bool
    cooldown: float
    retry_in: float | None
    final: bool
    halt: str


class RecoveryPolicies:
    """Category -> :class:`Decision`, from the defaults, the settings and their overrides.

    Args:
        settings: budgets, backoff, cool-down default and ``recovery`` overrides.
        rng: the random source for backoff jitter (seed it to replay a run).
    """

    def __init__(self, settings: Settings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._backoff = Backoff(
            settings.backoff_base, settings.backoff_max, rng=rng or random.Random()
        )
        policies = dict(DEFAULT_POLICIES)
        policies["handler_bug"] = replace(
            policies["handler_bug"], attempts=settings.handler_bug_attempts
        )
        policies["unknown"] = replace(policies["unknown"], attempts=settings.unknown_attempts)
        for category, spec in settings.recovery.items():
            policies[category] = Policy.parse(spec, default=policies.get(category))
        self._policies = policies

    def policy(self, category: str) -> Policy:
        """The policy for ``category`` (an unknown name gets the ``unknown`` policy)."""
        return self._policies.get(category) or self._policies["unknown"]

    def decide(self, found: Classification, *, attempts: int, recoveries: int) -> Decision:
        """What to do after a failure classified as ``found``.

        Args:
            found: the failure's classification.
            attempts: page-budget failures the page was charged before this one.
            recoveries: infra-budget failures the page was charged before this one.
        """
        policy = self.policy(found.category)
        kinds = {type(action) for action in policy.actions}
        names: list[str] = []
        for action in policy.actions:
            name = _NAMES[type(action)]
            if name not in names:
                names.append(name)

        if Halt in kinds:
            return Decision(
                category=found.category,
                actions=("halt",),
                charge=policy.budget,
                restart=False,
                relogin=False,
                refresh=False,
                cooldown=0.0,
                retry_in=0.0,  # the page goes back unharmed; a later run takes it
                final=False,
                halt=f"{found.category}: {found.message}",
            )

        settings = self.settings
        if policy.budget == "page":
            charged = attempts + 1
            cap = policy.attempts or settings.max_attempts
        else:
            charged = recoveries + 1
            cap = policy.attempts or settings.max_recoveries
        final = Skip in kinds or charged >= cap

        cooldown = 0.0
        cool = next((a for a in policy.actions if isinstance(a, CoolDown)), None)
        if cool is not None:
            if found.retry_after is not None:
                cooldown = max(0.0, found.retry_after)
            elif cool.default:
                cooldown = settings.cooldown_default
        if cooldown <= 0 and "cooldown" in names:
            names.remove("cooldown")

        retry_in: float | None = None
        if final:  # no retry, so no page state to drop; restart / relogin / cool-down stand
            names = [name for name in names if name not in ("retry", "refresh")]
        else:
            retry = next((a for a in policy.actions if isinstance(a, Retry)), None)
            delay = self._backoff.delay(charged) if retry is not None and retry.backoff else 0.0
            retry_in = max(delay, cooldown)

        return Decision(
            category=found.category,
            actions=tuple(names),
            charge=policy.budget,
            restart=Restart in kinds,
            relogin=Relogin in kinds,
            refresh=Refresh in kinds and not final,
            cooldown=cooldown,
            retry_in=retry_in,
            final=final,
            halt="",
        )
