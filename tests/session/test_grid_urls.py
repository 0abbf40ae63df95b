"""A Grid behind basic auth: its credentials go as a header, never into what enduro keeps."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from enduro.session._processes import (
    close_grid_session,
    grid_session_address,
    shown_url,
    split_credentials,
)


def test_credentials_are_split_off_and_hidden_when_shown() -> None:
    url = "http://ann:s%40cret@grid.local:4444/wd/hub"
    assert split_credentials(url) == ("http://grid.local:4444/wd/hub", "ann:s@cret")
    assert split_credentials("http://grid.local:4444") == ("http://grid.local:4444", None)
    assert shown_url(url) == "http://ann:***@grid.local:4444/wd/hub"
    assert shown_url("http://grid.local:4444") == "http://grid.local:4444"
    # what the store keeps of a session
    assert grid_session_address(url, "abc") == "http://grid.local:4444/wd/hub/session/abc"


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, str | None]]] = []

    def do_DELETE(self) -> None:
        _Recorder.seen.append(("DELETE", self.path, self.headers.get("Authorization")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def grid_port() -> Iterator[int]:
    _Recorder.seen = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_kept_address_is_closed_with_the_credentials_of_the_same_grid_only(
    grid_port: int,
) -> None:
    grid = f"http://ann:pw@127.0.0.1:{grid_port}"
    address = grid_session_address(grid, "s1")
    assert "pw" not in address

    assert close_grid_session(address, grid_url=grid)
    assert close_grid_session(address, grid_url="http://ann:pw@127.0.0.1:1")  # another Grid
    token = base64.b64encode(b"ann:pw").decode()
    assert _Recorder.seen == [
        ("DELETE", "/session/s1", f"Basic {token}"),
        ("DELETE", "/session/s1", None),  # its credentials are not sent elsewhere
    ]
