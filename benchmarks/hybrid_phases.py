"""Where does enduro's time go on a list-only hybrid page, beside the bare loop's?

``hybrid.py`` says how much enduro adds to a page; this says where. The same
pages of the built-in site go through ``hybrid.py``'s bare httpx loop and
enduro's hybrid reference job (the ``list`` shape: one call a page), with a
timer wrapped around httpx's send (both sides) and around each step of
enduro's page worker: the liveness check, the limiter's reads of the shared
pace, claiming, building the request, the handler, encoding the records and
the page's transaction. The wrappers cost a few microseconds a call; a step's
first call (the browser's start and login, for ``ready``) is left out.
Prints, per round, the median send on each side and every step's
milliseconds a page (``--json``: every round's figures as one JSON object);
``--latency MS`` as in ``hybrid.py``.

    .venv/bin/python benchmarks/hybrid_phases.py --pages 200 --rounds 3 --latency 20
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx

from enduro.recovery import RateLimiter
from enduro.runner import _page
from enduro.session import HttpClient, SessionManager
from enduro.store import dumps_record
from enduro.store._sql_pages import SqlPages
from enduro.stress.site import ground_truth
from hybrid import ROWS, SEED, bare_loop, enduro_hybrid, latency_options
from overhead import make_parser, site_process

# (owner, attribute, label): enduro's steps of a page, in the order a page takes them
STEPS: tuple[tuple[Any, str, str], ...] = (
    (SqlPages, "claim_many", "claiming (a batch of pages)"),
    (RateLimiter, "wait_hold", "shared pace: hold read"),
    (SessionManager, "ready", "liveness check"),
    (RateLimiter, "acquire", "shared pace: turns (page + endpoint)"),
    (_page.PageWorker, "call_handler", "the handler (its sends included)"),
    (HttpClient, "_build", "building the request"),
    (_page, "prepare_records", "encoding the records"),
    (SqlPages, "complete_rows", "the page's transaction"),
)
NESTED = frozenset({"_build"})  # steps inside another one (the handler)


@contextmanager
def timed(owner: Any, name: str, into: list[float]) -> Iterator[None]:
    """``owner.name`` appends each call's seconds to ``into`` while inside."""
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - began)

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def main() -> None:
    parser = make_parser(__doc__, pages=200, rounds=3)
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="MS", help="as in hybrid.py (default: none)"
    )
    args = parser.parse_args()
    pages: int = args.pages
    truth = [dumps_record(r) for r in ground_truth(SEED, pages, ROWS)]

    def ms(seconds: float) -> float:
        return seconds / pages * 1000

    with site_process(pages, *latency_options(args.latency)) as url:
        bare_loop(url, pages, "list", 1, truth)  # unmeasured: the site caches its pages
        rounds: list[dict[str, Any]] = []
        for round_ in range(1, args.rounds + 1):
            bare_sends: list[float] = []
            with timed(httpx.Client, "send", bare_sends):
                bare = bare_loop(url, pages, "list", 1, truth)
            bare_sends = bare_sends[1:]  # the login's, before the timed part
            calls: dict[str, list[float]] = defaultdict(list)
            with ExitStack() as stack:
                stack.enter_context(timed(httpx.Client, "send", calls["send"]))
                for owner, name, label in STEPS:
                    stack.enter_context(timed(owner, name, calls[label]))
                enduro = enduro_hybrid(url, pages, "list", 1, truth)
            sends = calls["send"]
            bare_ms, enduro_ms = ms(bare.seconds), ms(enduro.seconds)
            rows = [
                ("bare loop: the sends", ms(sum(bare_sends))),
                ("bare loop: all else", bare_ms - ms(sum(bare_sends))),
                ("enduro: the sends", ms(sum(sends))),
            ]
            # a step's first call is left out: the browser's start and login, for ``ready``
            steps = [(name, label, ms(sum(calls[label][1:]))) for _, name, label in STEPS]
            outer = sum(value for name, _, value in steps if name not in NESTED)
            rows += [
                *((f"enduro: {'  ' * (name in NESTED)}{label}", v) for name, label, v in steps),
                ("enduro: all else (walk's start, browser's close)", enduro_ms - outer),
            ]
            if args.json:
                rounds.append(
                    {
                        "bare_ms_per_page": round(bare_ms, 3),
                        "enduro_ms_per_page": round(enduro_ms, 3),
                        "steps_ms_per_page": {label: round(v, 3) for label, v in rows},
                    }
                )
                continue
            print(
                f"round {round_}: a page takes {bare_ms:.2f} ms bare, {enduro_ms:.2f} in enduro"
                f" (ratio {bare_ms / enduro_ms:.3f}, enduro adds {enduro_ms - bare_ms:.2f});"
                f" the send's p50 {statistics.median(bare_sends) * 1000:.2f} ms bare,"
                f" {statistics.median(sends) * 1000:.2f} in enduro"
            )
            for label, value in rows:
                print(f"    {label:48} {value:6.2f} ms a page")
    if args.json:
        print(json.dumps({"pages": pages, "latency_ms": args.latency, "rounds": rounds}))


if __name__ == "__main__":
    main()
