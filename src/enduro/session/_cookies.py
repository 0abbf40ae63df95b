"""The site's cookies as ``ctx.http`` carries them, kept in step with the browser.

The browser is where cookies come from: :meth:`SiteCookies.replace` takes the
DevTools protocol's ``Network.getAllCookies`` answer and keeps the cookies of
the site's host, one per (name, domain, path). Cookies the site sets on an
HTTP answer go the other way: :meth:`SiteCookies.absorb` applies the
``Set-Cookie`` headers and returns what changed, in the shape
``Network.setCookies`` / ``Network.deleteCookies`` take, for the browser.

Every request goes to the one site (the client refuses other hosts), so
domain matching is the site's host against each cookie's domain, done once
when cookies arrive; :meth:`SiteCookies.header` then matches paths (RFC 6265
5.1.4) and the secure flag. ``http.cookiejar`` is not used: it treats
``localhost`` and host-only cookies in ways the browser does not.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["Cookie", "CookieChanges", "SiteClient", "SiteCookies"]

log = logging.getLogger(__name__)

_Key = tuple[str, str, str]  # name, domain, path


@dataclass(frozen=True)
class Cookie:
    """One cookie of the site, as the browser keeps it.

    Attributes:
        domain: the host (a host-only cookie) or ``.example.com`` (a domain cookie).
        expires: epoch seconds; None for a session cookie.
    """

    name: str
    value: str
    domain: str
    path: str = "/"
    secure: bool = False
    http_only: bool = False
    same_site: str = ""
    expires: float | None = None

    @property
    def key(self) -> _Key:
        return (self.name, self.domain, self.path)

    def to_cdp(self, site: str) -> dict[str, Any]:
        """Parameters of one cookie for ``Network.setCookies``."""
        data: dict[str, Any] = {
            "name": self.name,
            "value": self.value,
            "path": self.path,
            "secure": self.secure,
            "httpOnly": self.http_only,
        }
        if self.domain.startswith("."):
            data["domain"] = self.domain
        else:  # host-only: a url, so the browser does not widen it to a domain cookie
            data["url"] = site + self.path
        if self.same_site:
            data["sameSite"] = self.same_site
        if self.expires is not None:
            data["expires"] = self.expires
        return data


@dataclass(frozen=True)
class CookieChanges:
    """What a response's ``Set-Cookie`` headers changed: cookies set, cookies removed."""

    set: tuple[Cookie, ...] = ()
    deleted: tuple[Cookie, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.set or self.deleted)


class SiteCookies:
    """The cookies of one site, thread-safe; ``generation`` counts every change.

    Args:
        site: the site's origin, ``scheme://host[:port]``.
        clock: epoch seconds (cookie expiry).
    """

    def __init__(self, site: str, clock: Callable[[], float] = time.time) -> None:
        parts = urlsplit(site)
        self.site = site
        self.host = (parts.hostname or "").lower()
        self.https = parts.scheme == "https"
        self._clock = clock
        self._lock = threading.Lock()
        self._cookies: dict[_Key, Cookie] = {}
        self._ordered: list[Cookie] = []
        self.generation = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._cookies)

    def replace(self, browser: Iterable[dict[str, Any]]) -> bool:
        """Take the site's cookies from a ``Network.getAllCookies`` answer, dropping the rest.

        Returns:
            Whether anything changed.
        """
        now = self._clock()
        fresh: dict[_Key, Cookie] = {}
        for raw in browser:
            try:
                cookie = _from_cdp(raw)
            except (KeyError, TypeError, ValueError):
                continue
            if self._ours(cookie.domain) and not _expired(cookie, now):
                fresh[cookie.key] = cookie  # one per (name, domain, path): the last wins
        with self._lock:
            if fresh == self._cookies:
                return False
            self._cookies = fresh
            self._changed()
            return True

    def absorb(self, set_cookie: Iterable[str], request_path: str) -> CookieChanges:
        """Apply ``Set-Cookie`` header values of a response to ``request_path``.

        Returns:
            The cookies set and the cookies deleted (for the browser).
        """
        now = self._clock()
        changed: list[Cookie] = []
        deleted: list[Cookie] = []
        for header in set_cookie:
            parsed = _parse_set_cookie(header, self.host, request_path, now)
            if parsed is None:
                continue
            cookie, gone = parsed
            if not self._ours(cookie.domain):
                continue  # a cookie for another site is not ours to keep
            (deleted if gone else changed).append(cookie)
        if not changed and not deleted:
            return CookieChanges()
        with self._lock:
            for cookie in changed:
                self._cookies[cookie.key] = cookie
            for cookie in deleted:
                self._cookies.pop(cookie.key, None)
            self._changed()
        return CookieChanges(tuple(changed), tuple(deleted))

    def header(self, path: str) -> str:
        """The ``Cookie`` header for a request to ``path`` ("" if none applies)."""
        with self._lock:
            ordered = self._ordered
        now = self._clock()
        return "; ".join(
            f"{c.name}={c.value}"
            for c in ordered
            if _path_matches(path, c.path) and (self.https or not c.secure) and not _expired(c, now)
        )

    def values(self) -> dict[str, str]:
        """Name -> value of the site's cookies (the most specific path wins a name)."""
        with self._lock:
            ordered = self._ordered
        found: dict[str, str] = {}
        for cookie in ordered:  # longest paths first
            found.setdefault(cookie.name, cookie.value)
        return found

    def all(self) -> list[Cookie]:
        """Every cookie held."""
        with self._lock:
            return list(self._ordered)

    def _ours(self, domain: str) -> bool:
        bare = domain.lstrip(".").lower()
        return bool(bare) and (self.host == bare or self.host.endswith("." + bare))

    def _changed(self) -> None:
        # Longer paths first, as browsers order the Cookie header (RFC 6265 5.4).
        self._ordered = sorted(self._cookies.values(), key=lambda c: -len(c.path))
        self.generation += 1


def _from_cdp(raw: dict[str, Any]) -> Cookie:
    expires = raw.get("expires")
    return Cookie(
        name=str(raw["name"]),
        value=str(raw["value"]),
        domain=str(raw["domain"]),
        path=str(raw.get("path") or "/"),
        secure=bool(raw.get("secure", False)),
        http_only=bool(raw.get("httpOnly", False)),
        same_site=str(raw.get("sameSite") or ""),
        expires=float(expires) if isinstance(expires, int | float) and expires > 0 else None,
    )


def _expired(cookie: Cookie, now: float) -> bool:
    return cookie.expires is not None and cookie.expires <= now


def _path_matches(request: str, cookie: str) -> bool:
    if request == cookie:
        return True
    return request.startswith(cookie) and (cookie.endswith("/") or request[len(cookie)] == "/")


def _default_path(request_path: str) -> str:
    """RFC 6265 5.1.4: the request path up to its last ``/`` (``/`` if none)."""
    if not request_path.startswith("/") or request_path.count("/") == 1:
        return "/"
    return request_path[: request_path.rindex("/")]


def _parse_set_cookie(
    header: str, host: str, request_path: str, now: float
) -> tuple[Cookie, bool] | None:
    """One ``Set-Cookie`` value as a cookie, and whether it deletes that cookie."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        log.debug("ignoring a Set-Cookie header that does not parse")
        return None
    if len(jar) != 1:
        return None
    morsel = next(iter(jar.values()))
    domain = morsel["domain"].strip().lower()
    domain = "." + domain.lstrip(".") if domain else host
    path = morsel["path"] if morsel["path"].startswith("/") else _default_path(request_path)
    expires: float | None = None
    gone = False
    max_age = morsel["max-age"]
    if max_age:
        with contextlib.suppress(ValueError):
            seconds = int(max_age)
            expires = now + seconds
            gone = seconds <= 0
    elif morsel["expires"]:
        with contextlib.suppress(TypeError, ValueError):
            when = email.utils.parsedate_to_datetime(morsel["expires"]).timestamp()
            expires = when
            gone = when <= now
    same_site = str(morsel["samesite"]).capitalize() if morsel["samesite"] else ""
    cookie = Cookie(
        name=morsel.key,
        value=morsel.coded_value,  # as sent: the browser keeps the raw text too
        domain=domain,
        path=path,
        secure=bool(morsel["secure"]),
        http_only=bool(morsel["httponly"]),
        same_site=same_site,
        expires=expires,
    )
    return cookie, gone


# httpx must neither keep nor send cookies itself: SiteCookies does both.
_NO_COOKIES = DefaultCookiePolicy(allowed_domains=[])


class _NoJar(httpx.Cookies):
    """An empty jar that stays empty. httpx offers every answer to its client's
    jar, which builds a ``urllib`` request per answer (~7% of a fast page's
    worker time) only for the policy above to refuse it."""

    def __init__(self) -> None:
        super().__init__(CookieJar(policy=_NO_COOKIES))

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class SiteClient(httpx.Client):
    """The httpx client of ``ctx.http``: :class:`SiteCookies` keeps and sends
    its cookies, so its own jar is a :class:`_NoJar`, whatever is set."""

    def __init__(self, **options: Any) -> None:
        self._jar = _NoJar()
        super().__init__(**options)

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("ctx.http's cookies are kept by SiteCookies, not by its client")
