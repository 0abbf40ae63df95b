"""One short DevTools-protocol conversation with a browser, from any thread.

The Playwright backend starts Chromium itself with ``--remote-debugging-port=0``,
so the browser's own DevTools endpoint is at hand. Playwright's sync API belongs
to the thread that made it, but the session manager reaches the browser from
other threads too (``ctx.http``'s cookie sync, the flight recorder's look, a
health check): those go through here, over a websocket of their own, each call
bounded by a timeout. See ARCHITECTURE.md, "Browser backends".
"""

from __future__ import annotations

import contextlib
import itertools
import json
from pathlib import Path
from typing import Any

import websocket

__all__ = ["CdpError", "DevToolsLink", "read_devtools_port"]


class CdpError(Exception):
    """The browser's DevTools did not answer, or refused a command."""


def read_devtools_port(profile: Path) -> tuple[int, str] | None:
    """The port and browser path Chromium wrote to ``DevToolsActivePort`` in its
    profile (None while it has not)."""
    try:
        lines = (profile / "DevToolsActivePort").read_text().splitlines()
        return int(lines[0]), lines[1]
    except (OSError, IndexError, ValueError):
        return None


class DevToolsLink:
    """A browser's DevTools endpoint, spoken to one short connection at a time.

    Args:
        url: the browser's websocket (``ws://127.0.0.1:PORT/devtools/browser/ID``).
    """

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float) -> Any:
        """One browser-level command; its result.

        Raises:
            CdpError: no answer within ``timeout`` s, or an error from the browser.
        """
        return self.calls([(method, params or {})], timeout=timeout)[0]

    def page_calls(
        self,
        commands: list[tuple[str, dict[str, Any]]],
        *,
        timeout: float,
        context: str | None = None,
    ) -> list[Any]:
        """Commands to the browser's first page (attached for them, detached after);
        ``context``: the first page of that browser context, none other.

        Raises:
            CdpError: no page, no answer within ``timeout`` s, or an error.
        """
        with self._connection(timeout) as conn:
            targets = conn.send("Target.getTargets", {})["targetInfos"]
            pages = [
                t
                for t in targets
                if t.get("type") == "page"
                and (context is None or t.get("browserContextId") == context)
            ]
            if not pages:
                raise CdpError("the browser has no page" + (" in its context" if context else ""))
            attached = conn.send(
                "Target.attachToTarget", {"targetId": pages[0]["targetId"], "flatten": True}
            )
            session = attached["sessionId"]
            return [conn.send(method, params, session) for method, params in commands]

    def calls(self, commands: list[tuple[str, dict[str, Any]]], *, timeout: float) -> list[Any]:
        """Browser-level commands on one connection, in order; their results."""
        with self._connection(timeout) as conn:
            return [conn.send(method, params) for method, params in commands]

    def _connection(self, timeout: float) -> _Connection:
        try:
            ws = websocket.create_connection(self.url, timeout=timeout, suppress_origin=True)
        except (OSError, websocket.WebSocketException) as exc:
            raise CdpError(f"DevTools unreachable: {type(exc).__name__}: {exc}") from exc
        return _Connection(ws)


class _Connection:
    def __init__(self, ws: websocket.WebSocket) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    def __enter__(self) -> _Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self._ws.close(timeout=1)

    def send(self, method: str, params: dict[str, Any], session: str | None = None) -> Any:
        command_id = next(self._ids)
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        try:
            self._ws.send(json.dumps(message))
            while True:
                answer = json.loads(self._ws.recv())
                if answer.get("id") == command_id:
                    break
        except (OSError, ValueError, websocket.WebSocketException) as exc:
            raise CdpError(f"{method}: {type(exc).__name__}: {exc}") from exc
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error'].get('message', answer['error'])}")
        return answer.get("result", {})
