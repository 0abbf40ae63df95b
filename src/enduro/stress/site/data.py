"""The target site's data: DNA matches as a pure function of (seed, page, row).

Nothing here is stored. Every record is recomputed from a string-seeded
``random.Random``, which is stable across processes and Python runs, so the
site and the integrity check always agree on the ground truth. The record
shape is the one a scraper of the site exports; tests compare them with ``==``.

A match's details (``match_details``: what the API's relationship and badge
calls add) come from a stream of their own, so adding them left every list
record as it was; ``hybrid_record`` is what a job that merges the list and
both detail calls exports.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Iterator
from functools import lru_cache
from typing import cast

__all__ = [
    "find_match",
    "ground_truth",
    "hybrid_record",
    "hybrid_truth",
    "match_details",
    "match_id",
    "match_record",
    "page_rows",
]

# Names exercise escaping end to end: non-ASCII letters, apostrophes, hyphens,
# quotes, ampersands and the odd user-chosen display name with markup characters.
_FIRST_NAMES = (
    "José",
    "Siobhán",
    "Zoë",
    "Łukasz",
    "Anne-Marie",
    'Robert "Bob"',
    "Mary",
    "John",
    "Aoife",
    "Björn",
    "Chloé",
    "François",
    "Ngozi",
    "Hiroshi",
    "Priya",
    "Søren",
    "Dmitri",
    "Renée",
    "Jürgen",
    "Fatima",
    "Seán",
    "Élodie",
    "Małgorzata",
    "Tomás",
    "Mei",
    "James",
    "Olúwaseun",
    "Leilani",
)
_LAST_NAMES = (
    "Müller",
    "O'Brien",
    "Ng-Hart",
    "Wójcik",
    "García",
    "D'Angelo",
    "van der Berg",
    "St. John",
    "Smith",
    "Nguyen",
    "Kowalski",
    "Ó Súilleabháin",
    "MacLeod",
    "Øvergaard",
    "Brontë",
    "Hernández-López",
    "Yılmaz",  # noqa: RUF001 (a real Turkish letter, on purpose)
    "Papadopoulos",
    "Schröder",
    "Jones",
)
# Display names some users pick instead of their real name (about 1 in 40).
_HANDLES = (
    "dna_hunter<3",
    "Tom & Jerry Lee",
    '"Granny" Pat',
    '<script>alert("hi")</script>',  # a hostile display name: shown as text everywhere
    "M.K.",
)

# (relationship, weight, shared cM range, typical segment length range in cM)
_RELATIONSHIPS: tuple[tuple[str, float, tuple[float, float], tuple[float, float]], ...] = (
    ("Parent/Child", 0.2, (3330.0, 3720.0), (45.0, 75.0)),
    ("Full sibling", 0.3, (2200.0, 3400.0), (30.0, 60.0)),
    ("1st cousin", 1.5, (550.0, 1300.0), (20.0, 45.0)),
    ("2nd cousin", 5.0, (40.0, 480.0), (12.0, 30.0)),
    ("3rd cousin", 13.0, (10.0, 220.0), (9.0, 22.0)),
    ("4th cousin", 25.0, (8.0, 140.0), (8.0, 20.0)),
    ("5th–8th cousin", 55.0, (6.0, 60.0), (6.0, 18.0)),  # noqa: RUF001 (en dash, as sites print it)
)
_REL_WEIGHTS = tuple(r[1] for r in _RELATIONSHIPS)

_FIRST_DAY = dt.date(2023, 1, 1)
_LAST_DAY = dt.date(2026, 11, 1)
_TREE_MAX = 20000


def match_id(seed: int, page: int, row: int) -> str:
    """Return the opaque, stable id of the match at (page, row) for ``seed``."""
    digest = hashlib.sha256(f"{seed}:{page}:{row}".encode()).hexdigest()
    return "M" + digest[:12].upper()


def match_record(seed: int, page: int, row: int) -> dict[str, object]:
    """Return the match shown on ``page`` (1-based) at ``row`` (0-based).

    Returns:
        ``{"match_id", "name", "shared_cm", "segments", "relationship",
        "tree_size", "last_active", "page"}`` with types str, str, float (one
        decimal), int, str, int, str (YYYY-MM-DD), int.

    Raises:
        ValueError: if ``page`` < 1 or ``row`` < 0.
    """
    if page < 1 or row < 0:
        raise ValueError(f"page must be >= 1 and row >= 0, got page={page} row={row}")
    # The draw order below is part of the data contract: changing it changes every record.
    rng = random.Random(f"{seed}:{page}:{row}")
    if rng.random() < 1 / 40:
        name = rng.choice(_HANDLES)
    else:
        name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
    index = rng.choices(range(len(_RELATIONSHIPS)), weights=_REL_WEIGHTS)[0]
    relationship, _, (cm_lo, cm_hi), (len_lo, len_hi) = _RELATIONSHIPS[index]
    shared_cm = round(rng.uniform(cm_lo, cm_hi), 1)
    segments = max(1, round(shared_cm / rng.uniform(len_lo, len_hi)))
    if rng.random() < 0.35:
        tree_size = 0  # no tree linked, the most common single value on real sites
    else:
        tree_size = min(_TREE_MAX, max(1, round(rng.lognormvariate(5.0, 1.8))))
    days = rng.randint(0, (_LAST_DAY - _FIRST_DAY).days)
    last_active = (_FIRST_DAY + dt.timedelta(days=days)).isoformat()
    return {
        "match_id": match_id(seed, page, row),
        "name": name,
        "shared_cm": shared_cm,
        "segments": segments,
        "relationship": relationship,
        "tree_size": tree_size,
        "last_active": last_active,
        "page": page,
    }


def match_details(seed: int, page: int, row: int) -> dict[str, object]:
    """Return the details the API adds to the match at (page, row).

    Returns:
        ``{"longest_cm", "shared_ancestors"}``: the longest shared segment
        (float, one decimal, at most ``shared_cm``) and the ancestors the two
        trees share (int, 0 when the match has no tree).

    Raises:
        ValueError: if ``page`` < 1 or ``row`` < 0.
    """
    record = match_record(seed, page, row)
    shared_cm = cast(float, record["shared_cm"])
    segments = cast(int, record["segments"])
    # Both numbers are always drawn, in this order: the stream is part of the data contract.
    rng = random.Random(f"{seed}:{page}:{row}:details")
    longest_cm = round(min(shared_cm, shared_cm / segments * rng.uniform(1.0, 2.0)), 1)
    ancestors = rng.randint(0, 4)
    return {
        "longest_cm": longest_cm,
        "shared_ancestors": 0 if record["tree_size"] == 0 else ancestors,
    }


def hybrid_record(seed: int, page: int, row: int) -> dict[str, object]:
    """Return the match at (page, row) with its details: ``match_record`` plus ``match_details``."""
    return {**match_record(seed, page, row), **match_details(seed, page, row)}


@lru_cache(maxsize=256)
def _page_rows(seed: int, page: int, rows: int) -> tuple[dict[str, object], ...]:
    return tuple(match_record(seed, page, row) for row in range(rows))


def page_rows(seed: int, page: int, rows: int) -> list[dict[str, object]]:
    """Return the ``rows`` matches of ``page`` in display order (fresh dicts, safe to mutate)."""
    return [dict(record) for record in _page_rows(seed, page, rows)]


def ground_truth(seed: int, pages: int, rows: int) -> Iterator[dict[str, object]]:
    """Yield every record of the site, pages 1..``pages``, rows in display order."""
    for page in range(1, pages + 1):
        for row in range(rows):
            yield match_record(seed, page, row)


def hybrid_truth(seed: int, pages: int, rows: int) -> Iterator[dict[str, object]]:
    """Yield every ``hybrid_record`` of the site, in ``ground_truth``'s order."""
    for page in range(1, pages + 1):
        for row in range(rows):
            yield hybrid_record(seed, page, row)


@lru_cache(maxsize=8)
def _id_index(seed: int, pages: int, rows: int) -> dict[str, tuple[int, int]]:
    # Only ids are hashed here (cheap); the full record is built on lookup.
    return {
        match_id(seed, page, row): (page, row)
        for page in range(1, pages + 1)
        for row in range(rows)
    }


def find_match(seed: int, pages: int, rows: int, match_id: str) -> dict[str, object] | None:
    """Return the record whose id is ``match_id``, or None if the site has no such match."""
    found = _id_index(seed, pages, rows).get(match_id)
    if found is None:
        return None
    return match_record(seed, *found)
