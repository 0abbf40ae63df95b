"""Keeping a job's secrets (passwords, tokens) out of everything enduro writes.

:class:`Redactor` takes a secret out of a text in every form it shows up in
(plain, URL-encoded, HTML-escaped, JSON-escaped, and mixes of them). :func:`redacting_logs`
puts a filter on the process's log handlers for the length of a run, so a
library logging a WebDriver command at DEBUG (Selenium logs the text that
``send_keys`` types) cannot print a password either.
"""

from __future__ import annotations

import contextlib
import html.entities
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["REDACTED", "WITHHELD", "RedactingFilter", "Redactor", "redact", "redacting_logs"]

REDACTED = "[REDACTED]"


class Redactor:
    """Replaces every form of every secret with ``[REDACTED]``; compiled once.

    A secret matches when each of its characters appears in any of the forms
    a browser, a URL or a serializer writes it in: as itself, percent-encoded
    (either hex case; ``+`` for a space), as an HTML character reference
    (named, decimal or hex) or JSON/JavaScript-escaped (``\\"``, ``\\uXXXX``).
    Characters may mix forms, as in an HTML attribute that escapes ``"`` but
    not ``'``.

    Secrets learned during a run (the site's cookies, a CSRF token) are added
    with :meth:`add`; the pattern is compiled again only when one is new.
    Thread-safe.

    Args:
        secrets: the strings to hide; empty ones are ignored.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._known: set[str] = {s for s in secrets if s}
        self._compile()

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets hidden, longest first."""
        return self._secrets

    def _compile(self) -> None:
        self._secrets = tuple(sorted(self._known, key=len, reverse=True))
        self._pattern = (
            re.compile("|".join(_secret_pattern(s) for s in self._secrets))
            if self._secrets
            else None
        )

    def add(self, secrets: Iterable[str]) -> None:
        """Hide these too from now on (strings shorter than 4 characters are not
        secrets worth the false matches, and are ignored)."""
        new = {s for s in secrets if len(s) >= 4} - self._known
        if not new:
            return
        with self._lock:
            self._known |= new
            self._compile()

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by ``[REDACTED]``."""
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(REDACTED, text)

    def value(self, value: Any) -> Any:
        """A JSON-like value with every string in it (keys too) redacted."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every non-empty secret replaced by ``[REDACTED]``.

    Compiles a pattern on each call; keep a :class:`Redactor` for repeated use.
    """
    return Redactor(secrets)(text)


# Loggers of the libraries that talk to the browser and the site: at DEBUG they
# print whole CDP payloads and response headers, cookies included, before
# enduro has seen the values to redact them.
_WIRE_LOGGERS = ("selenium", "urllib3", "httpx", "httpcore", "hpack", "h11")
_WIRE_WORDS = re.compile(r"cookie|csrf|xsrf|authorization", re.IGNORECASE)
WITHHELD = "[withheld: a wire-level log line that may carry cookies or tokens]"


class RedactingFilter(logging.Filter):
    """A handler filter that redacts secrets from every record it passes, and
    withholds wire-level lines of the HTTP and WebDriver libraries that mention
    cookies or tokens.

    Args:
        secrets: the strings to hide, or a :class:`Redactor` (which may learn more).
    """

    def __init__(self, secrets: Iterable[str] | Redactor) -> None:
        super().__init__()
        self._redact = secrets if isinstance(secrets, Redactor) else Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        if record.name.startswith(_WIRE_LOGGERS) and _WIRE_WORDS.search(message):
            record.msg, record.args = WITHHELD, ()
            return True
        cleaned = self._redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if self._redact(text) != text:
                record.exc_info = None
                record.exc_text = self._redact(text)
        return True


@contextlib.contextmanager
def redacting_logs(secrets: Iterable[str] | Redactor) -> Iterator[None]:
    """While inside, every handler on the root logger redacts ``secrets`` (a
    :class:`Redactor` keeps redacting what it learns meanwhile) and withholds
    wire-level lines that mention cookies."""
    log_filter = RedactingFilter(secrets)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(log_filter)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(log_filter)


def _secret_pattern(secret: str) -> str:
    return "".join(_char_pattern(c) for c in secret)


def _char_pattern(char: str) -> str:
    code = ord(char)
    forms = [re.escape(char)]
    # percent-encoded UTF-8, either hex case
    forms.append("".join("%" + _hex_ci(f"{b:02X}") for b in char.encode("utf-8")))
    if char == " ":
        forms.append(r"\+")
    # HTML character references
    forms.append(f"&#0*{code};")
    forms.append(f"&#[xX]0*{_hex_ci(f'{code:X}')};")
    name = html.entities.codepoint2name.get(code)
    if name:
        forms.append(f"&{name};")
    if char == "'":
        forms.append("&apos;")
    # JSON / JavaScript string escapes
    if char in "\"\\/'":
        forms.append(re.escape("\\" + char))
    units = char.encode("utf-16-be")
    forms.append(
        "".join(
            r"\\u" + _hex_ci(f"{int.from_bytes(units[i : i + 2], 'big'):04X}")
            for i in range(0, len(units), 2)
        )
    )
    return "(?:" + "|".join(forms) + ")"


def _hex_ci(digits: str) -> str:
    """A regex matching hex ``digits`` in either case."""
    return "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in digits)
