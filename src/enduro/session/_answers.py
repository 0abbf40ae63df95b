"""What an answer of the site means to ``ctx.http``: its parsed body, or the
enduro error it is (and so its category, through ``classify``); and how a
failed exchange is written down for the flight recorder, its secrets hidden.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from enduro._secrets import REDACTED
from enduro.errors import (
    AuthLost,
    BadResponse,
    HttpError,
    NetworkError,
    RateLimited,
    RequestTimeout,
    ServerError,
)
from enduro.recovery import Classification, is_login_url
from enduro.session._signals import parse_retry_after

__all__ = ["EXCERPT_CHARS", "flight_record", "shown", "transport_error", "verdict"]

EXCERPT_CHARS = 2000
"""How much of an answer's body the flight recorder keeps."""


def verdict(
    where: str, response: httpx.Response, want_json: bool, login_pattern: str
) -> tuple[Any, Exception | None]:
    """The parsed body of an answer, or the enduro error it is (``where``: the
    request line, for the message)."""
    status = response.status_code
    if 300 <= status < 400:
        location = response.headers.get("location", "")
        if is_login_url(location, login_pattern):
            return None, AuthLost(f"{where}: HTTP {status} to the login page")
        if want_json:
            return None, BadResponse(f"{where}: HTTP {status} where JSON was expected")
        return None, None
    if status in (401, 403):
        return None, AuthLost(f"{where}: HTTP {status}{_said(response)}")
    if status >= 400:
        header = response.headers.get("retry-after")
        retry_after = parse_retry_after(header, time.time()) if header else None
        text = f"{where}: HTTP {status}{_said(response)}"
        if status == 429:
            return None, RateLimited(text, retry_after=retry_after)
        if status >= 500:
            return None, ServerError(text, status=status, retry_after=retry_after)
        return None, HttpError(text, status=status)
    if not want_json:
        return None, None
    try:
        return json.loads(response.content), None
    except ValueError:
        kind = response.headers.get("content-type", "")
        if "json" in kind:
            size = len(response.content)
            return None, NetworkError(f"{where}: the JSON body is cut short ({size} bytes)")
        excerpt = " ".join(response.text[:60].split())
        return None, BadResponse(
            f"{where}: answered {kind or 'no content type'} where JSON was expected ({excerpt!r})"
        )


def transport_error(where: str, exc: httpx.HTTPError) -> Exception:
    """The enduro error of a request that got no whole answer."""
    if isinstance(exc, httpx.TimeoutException):
        error: Exception = RequestTimeout(f"{where}: no answer in time ({type(exc).__name__})")
    else:  # refused, reset, a body cut short, ...
        error = NetworkError(f"{where}: {type(exc).__name__}: {_first_line(exc)}")
    error.__cause__ = exc
    return error


def flight_record(
    found: Classification,
    endpoint: str,
    page: str,
    where: str,
    request: httpx.Request | None,
    response: httpx.Response | None,
    tries: int,
) -> dict[str, Any]:
    """What was asked and answered, cookies and authorisation headers hidden
    (the recorder redacts the rest)."""
    record: dict[str, Any] = {
        "category": found.category,
        "endpoint": endpoint,
        "page": page,
        "try": tries,
        "error": found.message,
        "request": None if request is None else _describe(request.headers, where),
        "response": None,
    }
    if response is not None:
        record["response"] = {
            "status": response.status_code,
            **_describe(response.headers),
            "body": response.text[:EXCERPT_CHARS],
        }
    return record


def _describe(headers: httpx.Headers, where: str | None = None) -> dict[str, Any]:
    shown = {
        key: REDACTED if key.lower() in ("cookie", "set-cookie", "authorization") else value
        for key, value in headers.multi_items()
    }
    return {"line": where, "headers": shown} if where is not None else {"headers": shown}


def shown(url: httpx.URL) -> str:
    path = url.raw_path.decode("ascii", "replace")
    return path if len(path) <= 200 else path[:199] + "…"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def _said(response: httpx.Response) -> str:
    """`` (the site's "error" text)`` of a JSON error answer, else ""."""
    if "json" not in response.headers.get("content-type", ""):
        return ""
    try:
        body = json.loads(response.content)
    except ValueError:
        return ""
    said = body.get("error") if isinstance(body, dict) else None
    return f" ({str(said)[:100]})" if said else ""
