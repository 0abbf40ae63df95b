"""The flight recorder: what the browser showed at the first error of each kind.

For the first error of a group (``"element:StaleElementReferenceException"``)
:class:`FlightRecorder` saves a screenshot, the page's HTML, the browser's
console log and a small metadata file, so a failure hours into a run can be
looked at afterwards. Later errors of the same group cost nothing: the
browser is not touched.

Nothing secret is written: every form of every secret (plain, URL-encoded,
HTML-escaped, JSON-escaped, and any mix of them) is replaced by
``[REDACTED]`` in the HTML, the console log and the metadata; password inputs
lose their ``value`` attribute in the saved HTML; and the screenshot, a PNG
straight from Chromium, is written without any text chunks. The screenshot's
pixels still show what the page displayed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from enduro._secrets import Redactor, redact
from enduro.recovery import PageSignals
from enduro.session._backend import BrowserView

__all__ = ["FlightRecorder", "Redactor", "redact", "strip_png_text"]

log = logging.getLogger(__name__)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"})
_SLUG_MAX = 60
_SUFFIXES = (".png", ".html", ".console.json", ".meta.json", ".http.json")


def strip_png_text(png: bytes) -> bytes:
    """``png`` without text, EXIF or time chunks (unchanged if it is not a well-formed PNG)."""
    if not png.startswith(_PNG_SIGNATURE):
        return png
    kept = [_PNG_SIGNATURE]
    offset = len(_PNG_SIGNATURE)
    while offset < len(png):
        if offset + 12 > len(png):
            return png
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        end = offset + 12 + length
        if end > len(png):
            return png
        if png[offset + 4 : offset + 8] not in _PNG_TEXT_CHUNKS:
            kept.append(png[offset:end])
        offset = end
    return b"".join(kept)


class FlightRecorder:
    """Saves screenshot, HTML, console log and metadata at the first error of each group.

    Thread-safe: workers may share one recorder (each group is captured once).
    Usable as a context manager; after :meth:`close` it captures nothing.

    Args:
        directory: where files go; created (mode 0o700) at the first capture.
        secrets: strings redacted from everything written, or the run's
            :class:`Redactor` (which learns the site's cookies as they come).
        clock: epoch seconds, for the metadata's time.
    """

    def __init__(
        self,
        directory: Path,
        secrets: Iterable[str] | Redactor = (),
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self._redact = secrets if isinstance(secrets, Redactor) else Redactor(secrets)
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._count = 0
        self._closed = False

    @property
    def groups_seen(self) -> frozenset[str]:
        """Groups already captured (or tried: a group is tried once)."""
        with self._lock:
            return frozenset(self._seen)

    def capture(
        self,
        look: Callable[[], BrowserView],
        group: str,
        *,
        label: str = "",
        signals: PageSignals | None = None,
    ) -> dict[str, str] | None:
        """Save what the browser shows, if ``group`` was not captured before.

        ``look`` asks the browser (the backend's
        :meth:`~enduro.session.BrowserBackend.look`, bounded by its timeout) and
        only when ``group`` is new; what it read is written.

        Args:
            look: asks the browser of the page that failed what it shows.
            group: the kind of error; only its first capture is saved.
            label: a line for the metadata (e.g. the error message).
            signals: what :func:`collect_signals` read, saved in the metadata
                (it drains the console log, so pass its errors on this way).

        Returns:
            Absolute paths of the files written, keyed ``screenshot``, ``html``,
            ``console`` and ``meta`` (only those written); None when the group
            was seen before, the recorder is closed, the browser does not
            answer or nothing could be written. Never raises.
        """
        number = self._claim(group)
        if number is None:
            return None
        try:
            return self._capture(look(), group, label, signals, number)
        except Exception:
            log.warning("flight recorder: capture of %s failed", self._redact(group), exc_info=True)
            return None

    def capture_record(
        self, group: str, record: dict[str, Any], redactor: Redactor | None = None
    ) -> dict[str, str] | None:
        """Save a record of what was asked and answered (an HTTP request's first error
        of ``group``), redacted, if ``group`` was not captured before.

        Returns:
            ``{"record": path}``, or None when the group was seen before, the
            recorder is closed or the file could not be written. Never raises.
        """
        number = self._claim(group)
        if number is None:
            return None
        redact = redactor or self._redact
        try:
            stem = self._free_stem(f"{number:03d}-{_slug(redact(group))}")
            meta = {
                "group": redact(group),
                "time": datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="seconds"),
                **record,
            }
            text = redact(json.dumps(redact.value(meta), indent=1, ensure_ascii=False))
            return {"record": self._write(f"{stem}.http.json", text.encode())}
        except Exception:
            log.warning("flight recorder: record of %s failed", redact(group), exc_info=True)
            return None

    def _claim(self, group: str) -> int | None:
        """The number of ``group``'s capture, or None if it was captured (or the recorder
        closed): a group is tried once."""
        with self._lock:
            if self._closed or group in self._seen:
                return None
            self._seen.add(group)
            self._count += 1
            return self._count

    def close(self) -> None:
        """Capture nothing more; safe to call twice."""
        with self._lock:
            self._closed = True

    def __enter__(self) -> FlightRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _capture(
        self,
        view: BrowserView,
        group: str,
        label: str,
        signals: PageSignals | None,
        number: int,
    ) -> dict[str, str] | None:
        if view.empty:
            log.debug("flight recorder: the browser did not answer (%s)", view.incomplete)
            return None

        redact = self._redact
        safe_group = redact(group)
        stem = self._free_stem(f"{number:03d}-{_slug(safe_group)}")
        written: dict[str, str] = {}
        if view.screenshot:
            written["screenshot"] = self._write(f"{stem}.png", strip_png_text(view.screenshot))
        if view.html is not None:
            written["html"] = self._write(f"{stem}.html", redact(view.html).encode())
        console = view.console
        if console is not None:
            text = redact(json.dumps(redact.value(console), indent=1, ensure_ascii=False))
            written["console"] = self._write(f"{stem}.console.json", text.encode())
        meta: dict[str, Any] = {
            "group": safe_group,
            "label": label,
            "url": view.url or "",
            "time": datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="seconds"),
            "files": {k: Path(v).name for k, v in written.items()},
        }
        if view.incomplete:
            meta["incomplete"] = view.incomplete
        if signals is not None:
            meta["signals"] = {
                "url": signals.url,
                "status": signals.status,
                "retry_after": signals.retry_after,
                "net_error": signals.net_error,
                "console_errors": list(signals.console_errors),
            }
        text = redact(json.dumps(redact.value(meta), indent=1, ensure_ascii=False))
        written["meta"] = self._write(f"{stem}.meta.json", text.encode())
        return written

    def _free_stem(self, stem: str) -> str:
        """``stem``, or ``stem-2``... if an earlier recorder used the directory."""
        self._ensure_directory()
        candidate, n = stem, 1
        while any((self.directory / f"{candidate}{s}").exists() for s in _SUFFIXES):
            n += 1
            candidate = f"{stem}-{n}"
        return candidate

    def _ensure_directory(self) -> None:
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)

    def _write(self, name: str, data: bytes) -> str:
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return str(path.resolve())


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_]+", "-", text).strip("-")[:_SLUG_MAX].strip("-")
    return slug or "capture"
