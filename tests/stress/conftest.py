"""Fixtures shared by the stress tests: a browser-less HTTP client for the built-in site."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from email.message import Message
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from enduro.stress.site import SiteConfig
from enduro.stress.site.app import SESSION_COOKIE

USER, PASSWORD = SiteConfig().username, SiteConfig().password

FAKE_DOM_JS = r"""
class Node {
  constructor(tag) { this.tag = tag; this.dataset = {}; this.children = []; this.text = ""; }
  appendChild(child) {
    if (child.tag === "#fragment") { this.children.push(...child.children); }
    else { this.children.push(child); }
    return child;
  }
  removeChild(child) { this.children.splice(this.children.indexOf(child), 1); return child; }
  get firstChild() { return this.children[0] || null; }
  set textContent(value) { this.text = String(value); this.children = []; }
  set innerHTML(value) { throw new Error("innerHTML used"); }
  cloneNode(deep) {
    const n = new Node(this.tag); n.clone = true; n.children = this.children; return n;
  }
}
"""
"""Just enough DOM for the site's matches.js, for node (a harness adds document and fetch)."""


def run_node(tmp_path: Path, harness: str, *args: str) -> Any:
    """Run ``FAKE_DOM_JS`` + ``harness`` with node; return the JSON it prints.
    (``make setup`` installs Debian's nodejs: no assertion here drops silently.)"""
    node = shutil.which("node")
    assert node is not None, "node is missing: make setup installs Debian's nodejs"
    path = tmp_path / "harness.js"
    path.write_text(FAKE_DOM_JS + harness, encoding="utf-8")
    out = subprocess.run(
        [node, str(path), *args], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return json.loads(out)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: object,
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> None:
        return None


class Client:
    """A browser-less session against the site: one cookie jar, redirects reported, not followed."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def request(
        self,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        cookie: str | None = None,
    ) -> tuple[int, Message, str]:
        data = urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        if cookie is not None:
            req.add_header("Cookie", f"{SESSION_COOKIE}={cookie}")
        try:
            with self._opener.open(req, timeout=30) as resp:
                return resp.status, resp.headers, resp.read().decode("utf-8")
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.headers, err.read().decode("utf-8")

    def login(
        self, password: str = PASSWORD, next_target: str = "/matches?page=1"
    ) -> tuple[int, Message]:
        form = {"username": USER, "password": password, "next": next_target}
        status, headers, _ = self.request("/login", form)
        return status, headers

    def token_or_none(self) -> str | None:
        """The session cookie's value, or None when not logged in."""
        return next((c.value for c in self.jar if c.name == SESSION_COOKIE), None)

    def token(self) -> str:
        """The session cookie's value; asserts there is one."""
        token = self.token_or_none()
        assert token is not None, "not logged in"
        return token


@pytest.fixture
def client_for() -> type[Client]:
    """``client_for(url)``: a fresh client, with its own cookie jar, for the site at url."""
    return Client


def raw_get(port: int, path: str, headers: dict[str, str]) -> tuple[bytes, BaseException | None]:
    """Send one GET on a fresh socket; return what arrived and the error that ended it
    (a fault that cuts a response short is seen as the bytes, not as a client's error)."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{lines}\r\n".encode()
        )
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except OSError as exc:
            return data, exc
    return data, None


def content_length(raw: bytes) -> tuple[int, bytes]:
    """The Content-Length a raw answer promised, and the body that came."""
    head, _, body = raw.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    assert match, head
    return int(match.group(1)), body
