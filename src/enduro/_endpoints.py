"""Endpoint templates: the request paths that one rate limit, one counter, cover.

``/api/v2/matches/M3F2A9C0B1D2/badge?x=1`` and ``/api/v2/matches/M0B1C2D3E4F5/badge``
are the same endpoint, ``/api/v2/matches/{id}/badge``: the client's limiters and
statistics and the built-in site's own rate limit all key on this template, so
they agree on what "one endpoint" is. Pure: no imports from enduro.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["endpoint_of"]

_ID = "{id}"
# A segment this long that contains a digit is an opaque id, not a name ("badges", "v2").
_ID_MIN_LENGTH = 8


def endpoint_of(path: str) -> str:
    """Return the endpoint template of a request path (or full URL).

    The query string (and fragment) is dropped, and every path segment that
    is an id becomes ``{id}``: a segment is an id when it is all digits, or
    when it is at least 8 characters long and contains a digit.

    >>> endpoint_of("/api/v2/matches?currentPage=3&itemsPerPage=50")
    '/api/v2/matches'
    >>> endpoint_of("/api/v2/matches/M3F2A9C0B1D2/relationship")
    '/api/v2/matches/{id}/relationship'
    >>> endpoint_of("http://h:1/users/42/items?q")
    '/users/{id}/items'
    """
    if "://" in path:
        path = urlsplit(path).path or "/"
    path = path.split("?", 1)[0].split("#", 1)[0]
    return "/".join(_ID if _is_id(segment) else segment for segment in path.split("/"))


def _is_id(segment: str) -> bool:
    if segment.isascii() and segment.isdigit():
        return True
    return len(segment) >= _ID_MIN_LENGTH and any(ch.isdigit() for ch in segment)
