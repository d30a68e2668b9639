"""Keeps registered secret values out of everything the store writes.

Callers are meant to pass ``Secret`` objects, never values; this is the second line of
defence for the value that slipped in anyway (an exception message carrying a URL with
``apikey=...``, a DSN in a details dict). Every text column goes through it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from closte_sync.shared.secret import Secret, spellings


class Scrubber:
    def __init__(self) -> None:
        # Every spelling of every secret (as is, URL-encoded), with the mask it becomes.
        self._values: list[tuple[str, str]] = []

    def register(self, secret: Secret) -> None:
        value = secret.reveal()
        if not value:
            return
        for form in spellings(value):
            if all(form != known for known, _ in self._values):
                self._values.append((form, secret.masked))
        # Longest first, so a secret that contains another is masked as a whole.
        self._values.sort(key=lambda pair: len(pair[0]), reverse=True)

    def text(self, text: str) -> str:
        for value, masked in self._values:
            if value in text:
                text = text.replace(value, masked)
        return text

    def optional_text(self, text: str | None) -> str | None:
        return None if text is None else self.text(text)

    def json(self, value: Mapping[str, Any] | Any) -> str:
        """``value`` as JSON text with secrets masked; anything not JSON becomes ``str()``.

        ``str()`` of a ``Secret`` is its mask, so Secret objects in details are safe too.
        """
        encoded = json.dumps(value, default=str, ensure_ascii=False)
        for secret, shown in self._values:
            # A value inside JSON may be escaped ("\"", "\\"): mask both spellings.
            escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
            masked = json.dumps(shown, ensure_ascii=False)[1:-1]
            encoded = encoded.replace(escaped, masked)
            if escaped != secret:
                encoded = encoded.replace(secret, masked)
        return encoded
