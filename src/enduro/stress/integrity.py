"""The records a stress run stored, judged: against the site's ground truth, or for
completeness when the run was the user's own job (which has none)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from enduro.store import Store, dumps_record
from enduro.stress.record import RunRecord
from enduro.stress.site import ground_truth, hybrid_truth

__all__ = ["check_integrity"]


def check_integrity(record: RunRecord) -> dict[str, Any]:
    """The fields of :class:`enduro.report.Integrity` for the run's store."""
    if not record.site_served:
        return _completeness(record)
    config = record.config
    records = hybrid_truth if config.hybrid else ground_truth
    truth = {
        str(r["match_id"]): dumps_record(r) for r in records(config.seed, config.pages, config.rows)
    }
    found: dict[str, list[str]] = {}
    with Store.open(record.store_path, create=False) as store:
        for text in store.iter_record_texts(record.job_name):
            key = str(json.loads(text)["match_id"])
            found.setdefault(key, []).append(text)
    lost = sorted(set(truth) - set(found))
    duplicated = sorted(k for k, texts in found.items() if len(texts) > 1)
    corrupted = sorted(
        k for k, texts in found.items() if k in truth and any(t != truth[k] for t in texts)
    )
    extra = sorted(set(found) - set(truth))
    examples = [f"lost {k}" for k in lost[:5]] + [f"corrupted {k}" for k in corrupted[:5]]
    return {
        "mode": "truth",
        "expected": len(truth),
        "found": sum(len(t) for t in found.values()),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "corrupted": len(corrupted) + len(extra),
        "examples": examples + [f"unexpected {k}" for k in extra[:5]],
    }


def _completeness(record: RunRecord) -> dict[str, Any]:
    """A user's job has no ground truth: every page must be done and hold records
    (unless empty pages are allowed), and no record key may appear twice.

    ``lost`` counts pages here (not done, or done without a record),
    ``corrupted`` records that are not objects carrying the job's record key.
    """
    allow_empty = record.config.criteria.allow_empty_pages
    keys: Counter[str] = Counter()
    malformed = 0
    with Store.open(record.store_path, create=False) as store:
        per_page = store.records_per_page(record.job_name)
        done = store.done_at(record.job_name).keys()
        for text in store.iter_record_texts(record.job_name):
            stored = json.loads(text)
            if isinstance(stored, dict) and record.record_key in stored:
                keys[str(stored[record.record_key])] += 1
            else:
                malformed += 1
    undone = [key for key in record.keys if key not in done]
    empty = [key for key in record.keys if key in done and not per_page.get(key)]
    if allow_empty:
        empty = []
    duplicated = sorted(key for key, n in keys.items() if n > 1)
    examples = (
        [f"page {key} not done" for key in undone[:5]]
        + [f"page {key} done with no records" for key in empty[:5]]
        + [f"record key {key} stored {keys[key]} times" for key in duplicated[:5]]
    )
    return {
        "mode": "completeness",
        "expected": len(record.keys),
        "found": sum(keys.values()) + malformed,
        "lost": len(undone) + len(empty),
        "duplicated": len(duplicated),
        "corrupted": malformed,
        "examples": examples,
    }
