"""The built-in target site: a logged-in, JavaScript-rendered DNA-match list on 127.0.0.1.

Its data is a pure function of (seed, pages, rows), so ``ground_truth`` is
what a correct scraper of the site exports, record for record, and
``hybrid_truth`` what a hybrid job merging its JSON API's list and detail calls
exports. Its ``FaultPlan`` injects the server-side faults (429s, 5xx, resets,
broken pages, lapsed sessions...), seeded and replayable; which scenario fault
type each kind stands for is in :mod:`enduro.stress.vocabulary`.
"""

from enduro.stress.site.app import REQUEST_LOG, RequestLogEntry, SiteConfig, make_app
from enduro.stress.site.data import (
    find_match,
    ground_truth,
    hybrid_record,
    hybrid_truth,
    match_details,
    match_record,
    page_rows,
)
from enduro.stress.site.faults import (
    FAULT_KINDS,
    FAULT_TARGETS,
    REQUEST_KINDS,
    Fault,
    FaultPlan,
    ScheduledFault,
)
from enduro.stress.site.server import SiteServer, serve_forever

__all__ = [
    "FAULT_KINDS",
    "FAULT_TARGETS",
    "REQUEST_KINDS",
    "REQUEST_LOG",
    "Fault",
    "FaultPlan",
    "RequestLogEntry",
    "ScheduledFault",
    "SiteConfig",
    "SiteServer",
    "find_match",
    "ground_truth",
    "hybrid_record",
    "hybrid_truth",
    "make_app",
    "match_details",
    "match_record",
    "page_rows",
    "serve_forever",
]
