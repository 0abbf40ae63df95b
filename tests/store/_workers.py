"""Work for the processes the conformance suite starts (importable by name, so a
spawned process can run it)."""

from __future__ import annotations

import random
import time
from multiprocessing.synchronize import Event
from pathlib import Path

from enduro.store import Store
from tests.store._helpers import JOB, LEASE


def claim_until(target: str, owner: str, go: Event, stop_at: float, log: str) -> None:
    """Claim and complete pages until ``stop_at`` (wall clock) has passed and none
    is left; every claim is appended to ``log`` before the page is completed."""
    with Store.open(target) as store, Path(log).open("w") as out:
        go.wait()
        while True:
            got = store.claim_many(JOB, owner, LEASE, random.randint(1, 4))
            if not got:
                if time.time() >= stop_at:
                    return
                time.sleep(0.002)  # nothing to claim yet: the seeder is behind
                continue
            for page in got:
                out.write(f"{page.key}\n")
                out.flush()
                if not store.complete(page, owner, [{"id": page.key, "by": owner}], "id"):
                    raise AssertionError(f"{owner} lost the lease of page {page.key}")


def seed(target: str, keys: list[str], go: Event, result: str) -> None:
    """Seed ``keys`` once ``go`` is set; write how many the store said it added."""
    with Store.open(target) as store:
        go.wait()
        added = sum(store.seed_pages(JOB, keys[i : i + 50]) for i in range(0, len(keys), 50))
    Path(result).write_text(str(added))
