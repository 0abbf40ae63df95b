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
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["REDACTED", "RedactingFilter", "Redactor", "redact", "redacting_logs"]

REDACTED = "[REDACTED]"


class Redactor:
    """Replaces every form of every secret with ``[REDACTED]``; compiled once.

    A secret matches when each of its characters appears in any of the forms
    a browser, a URL or a serializer writes it in: as itself, percent-encoded
    (either hex case; ``+`` for a space), as an HTML character reference
    (named, decimal or hex) or JSON/JavaScript-escaped (``\\"``, ``\\uXXXX``).
    Characters may mix forms, as in an HTML attribute that escapes ``"`` but
    not ``'``.

    Args:
        secrets: the strings to hide; empty ones are ignored.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        self._pattern = (
            re.compile("|".join(_secret_pattern(s) for s in self.secrets)) if self.secrets else None
        )

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by ``[REDACTED]``."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REDACTED, text)

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


class RedactingFilter(logging.Filter):
    """A handler filter that redacts secrets from every record it passes."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
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
def redacting_logs(secrets: Iterable[str]) -> Iterator[None]:
    """While inside, every handler on the root logger redacts ``secrets``."""
    secrets = tuple(s for s in secrets if s)
    if not secrets:
        yield
        return
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
