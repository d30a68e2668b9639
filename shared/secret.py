"""A wrapper that keeps secrets (the Closte API key, the DB password) out of text.

Its ``str``/``repr``/``format`` show only a masked hint, so a secret that slips into an
f-string, a log call or an exception message leaks nothing. Code that really needs the
value (the HTTP form, the DB login) calls :meth:`Secret.reveal` at the last moment.

Two masks: a key shows its first four characters and its length (enough to tell two keys
apart, see :func:`mask`); a password shows only its length (:func:`mask_password`): a
password is often short and made by a person, so any of its characters helps a guesser.
"""

from __future__ import annotations

import re
from typing import Final, Literal
from urllib.parse import quote, quote_plus

_VISIBLE: Final = 4


def mask(value: str) -> str:
    """The most we ever show of a secret: its first four characters and its length."""
    if not value:
        return "(empty)"
    if len(value) <= _VISIBLE * 2:
        # Too short to show a prefix without giving most of it away.
        return f"… ({len(value)} chars)"
    return f"{value[:_VISIBLE]}… ({len(value)} chars)"


def mask_password(value: str) -> str:
    """All we ever show of a password: its length."""
    return f"({len(value)} chars)" if value else "(empty)"


SecretKind = Literal["key", "password"]


class Secret:
    """An opaque secret string; compare and reveal, never print.

    ``kind`` picks the mask: "key" (first four characters and the length) or "password"
    (the length only).
    """

    __slots__ = ("_value", "kind")

    def __init__(self, value: str, kind: SecretKind = "key") -> None:
        self._value = value
        self.kind: SecretKind = kind

    def reveal(self) -> str:
        return self._value

    @property
    def masked(self) -> str:
        return mask_password(self._value) if self.kind == "password" else mask(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return f"Secret({self.masked!r})"

    def __str__(self) -> str:
        return self.masked

    def __format__(self, spec: str) -> str:
        return format(self.masked, spec)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would carry the value across a process boundary unmasked.
        raise TypeError("Secret values cannot be pickled")


def spellings(value: str) -> list[str]:
    """``value`` as it may appear in text: as is, and URL-encoded the ways HTTP libraries
    write it (an error message quoting a URL with ``apikey=...``). Longest first."""
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value)}
    return sorted((form for form in forms if form), key=len, reverse=True)


_KEY_IN_URL = re.compile(r"(?i)(apikey=)[^&\s'\"]+")


def scrub_url_keys(text: str) -> str:
    """Mask whatever follows ``apikey=`` in a URL-like text, however it was encoded."""
    return _KEY_IN_URL.sub(r"\1(masked)", text)


def scrub(text: str, *secrets: Secret | str | None) -> str:
    """Replace every occurrence of the given secrets (any spelling) with their masks
    (a :class:`Secret`'s own mask; a plain string is masked as a key)."""
    for secret in secrets:
        if secret is None:
            continue
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value:
            shown = secret.masked if isinstance(secret, Secret) else mask(value)
            for form in spellings(value):
                text = text.replace(form, shown)
    return text
