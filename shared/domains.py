"""Domain names: validation and normalisation, shared by every part.

Names are stored in their ASCII (punycode) form, lower case, without a trailing dot, and
shown both ways. Unicode input is encoded with IDNA 2008 (the ``idna`` package, with UTS 46
mapping so that case and full-width forms fold the way browsers fold them). A wildcard is
``*.`` followed by a valid name, as Closte's ``wildcard`` aliases are.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import idna

MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
WILDCARD_PREFIX = "*."

_ASCII_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


class DomainError(ValueError):
    """A text that is not a usable domain name; ``reason`` says why in plain words."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"{text!r}: {reason}")
        self.text = text
        self.reason = reason


@dataclass(frozen=True, order=True)
class DomainName:
    """A valid name in ASCII form; ``unicode`` gives the form people read."""

    ascii: str

    @property
    def is_wildcard(self) -> bool:
        return self.ascii.startswith(WILDCARD_PREFIX)

    @property
    def unicode(self) -> str:
        return to_unicode(self.ascii)

    def __str__(self) -> str:
        return self.ascii


def is_wildcard(name: str) -> bool:
    return name.startswith(WILDCARD_PREFIX)


@functools.lru_cache(maxsize=65_536)
def normalize_domain(text: str) -> str:
    """Return ``text`` as a stored domain name (ASCII, lower case), or raise DomainError.

    Every pass sees the same names again (Closte's list, the sources): remembering them
    keeps a steady pass over 10,000 names cheap. A bad name is not remembered."""
    raw = text
    name = text.strip()
    if not name:
        raise DomainError(raw, "empty name")
    if not name.isascii():
        # UTS 46 mapping on the whole name first, as browsers do: it folds case and full-width
        # forms and turns the ideographic full stop ("。") into a label separator.
        name = _uts46_remap(raw, name)
    if any(ch.isspace() for ch in name):
        raise DomainError(raw, "contains white space")
    if "://" in name or "/" in name:
        raise DomainError(raw, "looks like a URL, not a domain name (drop the scheme and path)")
    if ":" in name:
        raise DomainError(raw, "contains ':' (a port is not part of a domain name)")
    if name.endswith("."):
        name = name[:-1]
    wildcard = name.startswith(WILDCARD_PREFIX)
    if wildcard:
        name = name[len(WILDCARD_PREFIX) :]
    if "*" in name:
        raise DomainError(raw, "'*' is only allowed as the whole first label ('*.example.com')")
    if not name:
        raise DomainError(raw, "empty name")
    labels = name.split(".")
    for label in labels:
        if not label:
            raise DomainError(raw, "empty label (two dots in a row, or a leading dot)")
    if len(labels) < 2:
        raise DomainError(raw, "not a domain: needs at least two labels, like example.com")
    ascii_labels = [_label_to_ascii(raw, label) for label in labels]
    if ascii_labels[-1].isdigit():
        raise DomainError(raw, "an IP address or numeric name is not a domain name")
    result = ".".join(ascii_labels)
    if wildcard:
        # The "*" is a label of the name too, so it counts towards the length limit.
        result = WILDCARD_PREFIX + result
    if len(result) > MAX_NAME_LENGTH:
        raise DomainError(raw, f"name too long ({len(result)} > {MAX_NAME_LENGTH} characters)")
    return result


def parse_domain(text: str) -> DomainName:
    return DomainName(normalize_domain(text))


def to_unicode(name: str) -> str:
    """The readable form of a stored name; names that do not decode are shown as they are."""
    if "xn--" not in name and name == name.lower():
        return name  # no punycode label: idna would give it back unchanged, at a cost
    prefix = WILDCARD_PREFIX if is_wildcard(name) else ""
    body = name[len(prefix) :]
    try:
        return prefix + idna.decode(body)
    except UnicodeError:  # idna.IDNAError and the codec errors it lets through
        return name


def display(name: str) -> str:
    """``name`` for people: the Unicode form, with the ASCII form beside it when they differ."""
    readable = to_unicode(name)
    return readable if readable == name else f"{readable} ({name})"


def _uts46_remap(raw: str, name: str) -> str:
    try:
        # std3_rules=False: ASCII punctuation passes through here and gets the clearer
        # per-label messages below ("bad character '_'", "looks like a URL").
        return idna.uts46_remap(name, std3_rules=False, transitional=False)
    except UnicodeError as exc:
        raise DomainError(raw, f"not a valid international name: {exc}") from None


def _label_to_ascii(raw: str, label: str) -> str:
    if label.isascii():
        lowered = label.lower()
        if len(lowered) > MAX_LABEL_LENGTH:
            raise DomainError(
                raw, f"label too long: {label!r} has {len(label)} > {MAX_LABEL_LENGTH} characters"
            )
        if lowered.startswith("xn--"):
            try:
                idna.decode(lowered)
            except UnicodeError as exc:
                raise DomainError(raw, f"bad punycode label {label!r}: {exc}") from None
            return lowered
        if not _ASCII_LABEL.match(lowered):
            bad = next((ch for ch in lowered if not (ch.isalnum() or ch == "-")), None)
            if bad is not None:
                raise DomainError(raw, f"bad character {bad!r} in label {label!r}")
            raise DomainError(raw, f"label {label!r} may not start or end with '-'")
        return lowered
    try:
        encoded = idna.encode(label).decode("ascii")
    except UnicodeError as exc:
        if "too long" in str(exc):
            # idna checks the length itself; say it in the same words as for ASCII labels.
            encoded = "xn--" + label.encode("punycode").decode("ascii")
        else:
            raise DomainError(
                raw, f"label {label!r} is not a valid international name: {exc}"
            ) from None
    if len(encoded) > MAX_LABEL_LENGTH:
        raise DomainError(
            raw, f"label too long: {label!r} encodes to {len(encoded)} > {MAX_LABEL_LENGTH}"
        )
    return encoded
