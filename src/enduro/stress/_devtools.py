"""Reaching a running Chromium's DevTools from outside the runner (fault injection).

chromedriver starts Chromium with ``--remote-debugging-port=0``; Chromium
writes the port it chose to ``DevToolsActivePort`` in its profile directory.
The stress tester opens its own DevTools session to the page there, so it can
crash the tab, wipe cookies or take the page offline for a while, exactly as
an outside event would, without touching the runner's WebDriver session.
Overrides such as network emulation end when the session closes, so an
offline window lasts as long as the tester holds it open.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["DevToolsError", "devtools_port", "page_command"]

_TIMEOUT = aiohttp.ClientTimeout(total=10)


class DevToolsError(Exception):
    """The browser's DevTools could not be reached or refused the command."""


def devtools_port(profile_dir: Path) -> int | None:
    """The DevTools port a Chromium with this profile listens on (None if unknown)."""
    try:
        first = (profile_dir / "DevToolsActivePort").read_text().splitlines()[0]
        return int(first)
    except (OSError, IndexError, ValueError):
        return None


def page_command(
    port: int, method: str, params: dict[str, Any] | None = None, *, hold: float = 0.0
) -> dict[str, Any]:
    """Send one DevTools command to the browser's first page; keep the session ``hold`` s.

    Raises:
        DevToolsError: no page target, no answer, or an error from the browser.
    """
    return asyncio.run(_page_command(port, method, params or {}, hold))


async def _page_command(
    port: int, method: str, params: dict[str, Any], hold: float
) -> dict[str, Any]:
    ids = itertools.count(1)
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json(content_type=None)
            pages = [t for t in targets if t.get("type") == "page"]
            if not pages:
                raise DevToolsError("the browser has no page")
            async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                command_id = next(ids)
                await ws.send_str(
                    json.dumps({"id": command_id, "method": method, "params": params})
                )
                answer: dict[str, Any] = {}
                if method != "Page.crash":  # a crashed page never answers
                    answer = await _answer(ws, command_id)
                if hold > 0:
                    await asyncio.sleep(hold)
                return answer
    except (aiohttp.ClientError, TimeoutError, OSError, KeyError, ValueError) as exc:
        raise DevToolsError(f"{method}: {type(exc).__name__}: {exc}") from exc


async def _answer(ws: aiohttp.ClientWebSocketResponse, command_id: int) -> dict[str, Any]:
    async for message in ws:
        if message.type != aiohttp.WSMsgType.TEXT:
            break
        data = json.loads(message.data)
        if data.get("id") == command_id:
            if "error" in data:
                raise DevToolsError(str(data["error"].get("message", data["error"])))
            result: dict[str, Any] = data.get("result", {})
            return result
    raise DevToolsError("the browser closed the DevTools session")
