"""Exception -> category, category -> action; budgets, backoff, rate limiter and guards."""

from enduro.recovery._backoff import Backoff
from enduro.recovery._classify import (
    DEFAULT_LOGIN_PATTERN,
    Classification,
    ErrorTable,
    classify,
    is_login_url,
    register_errors,
)
from enduro.recovery._deadline import DeadlineWatch
from enduro.recovery._guards import (
    BrokenJob,
    BrokenJobWatch,
    BurstDetector,
    CircuitBreaker,
    StallWatch,
)
from enduro.recovery._policies import (
    DEFAULT_POLICIES,
    Action,
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
from enduro.recovery._ratelimit import EndpointLimiters, RateLimiter, SharedPace
from enduro.recovery._signals import PageSignals

__all__ = [
    "DEFAULT_LOGIN_PATTERN",
    "DEFAULT_POLICIES",
    "Action",
    "Backoff",
    "BrokenJob",
    "BrokenJobWatch",
    "BurstDetector",
    "CircuitBreaker",
    "Classification",
    "CoolDown",
    "DeadlineWatch",
    "Decision",
    "EndpointLimiters",
    "ErrorTable",
    "Halt",
    "PageSignals",
    "Policy",
    "RateLimiter",
    "RecoveryPolicies",
    "Refresh",
    "Relogin",
    "Restart",
    "Retry",
    "SharedPace",
    "Skip",
    "StallWatch",
    "classify",
    "is_login_url",
    "register_errors",
]
