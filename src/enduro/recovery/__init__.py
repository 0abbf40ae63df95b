"""Exception -> category, category -> action; backoff."""

from enduro.recovery._backoff import Backoff
from enduro.recovery._classify import Classification, classify

__all__ = ["Backoff", "Classification", "classify"]
