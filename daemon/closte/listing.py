"""Read the items of a ``getdomains`` answer: all of them, or an error naming the first
one that cannot be read.

Closte does not document the item shape, so each of these is accepted:

- a plain name: ``"a.com"``, ``"*.b.com"``;
- an object with the name under ``domain``, ``name`` or ``alias`` (the field names seen in
  Closte's helper plugin and the likely alternatives), and optionally a ``wildcard`` flag
  (``1``, ``"1"``, ``true``, ``"true"``; ``0``, ``"0"``, ``false``, ``"false"``, ``""``,
  ``null``): ``{"domain": "b.com", "wildcard": 1}`` and ``{"domain": "*.b.com",
  "wildcard": 1}`` both mean ``*.b.com``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from closte_sync.shared.domains import DomainError, normalize_domain

NAME_FIELDS: Final = ("domain", "name", "alias")
_EXPECTED: Final = "expected a name or an object with 'domain'"
_SHOWN: Final = 60
_WILDCARD_ON: Final = frozenset({"1", "true"})
_WILDCARD_OFF: Final = frozenset({"0", "false", ""})


class UnreadableItemError(ValueError):
    """An item of the list that is not a domain name; the message says which and why."""


def read_listing(items: Sequence[object]) -> tuple[str, ...]:
    """Every alias in ``items`` (ASCII, wildcards as ``*.name``), sorted and unique."""
    names = {_read_item(item, f"item {n} of {len(items)}") for n, item in enumerate(items, 1)}
    return tuple(sorted(names))


def _read_item(item: object, where: str) -> str:
    if isinstance(item, str):
        return _domain(item, where)
    if not isinstance(item, dict):
        raise UnreadableItemError(f"{where} is a {_type_name(item)}; {_EXPECTED}")
    field = next((f for f in NAME_FIELDS if f in item), None)
    if field is None:
        keys = sorted(str(key) for key in item)
        raise UnreadableItemError(f"{where} is a dict with keys {keys}; {_EXPECTED}")
    raw = item[field]
    if not isinstance(raw, str):
        raise UnreadableItemError(
            f"{where}: its {field!r} is a {_type_name(raw)}, not a domain name"
        )
    name = raw.strip()
    if _wildcard(item.get("wildcard"), where) and not name.startswith("*."):
        name = "*." + name
    return _domain(name, where)


def _domain(raw: str, where: str) -> str:
    try:
        return normalize_domain(raw)
    except DomainError as exc:
        shown = raw if len(raw) <= _SHOWN else raw[: _SHOWN - 1] + "…"
        raise UnreadableItemError(
            f"{where} is {shown!r}, not a domain name ({exc.reason})"
        ) from None


def _wildcard(flag: object, where: str) -> bool:
    """The item's wildcard flag in any of the spellings PHP and JSON give it."""
    if flag is None or isinstance(flag, bool):
        return bool(flag)
    if isinstance(flag, int) and flag in (0, 1):
        return flag == 1
    if isinstance(flag, str) and flag.strip().lower() in _WILDCARD_ON | _WILDCARD_OFF:
        return flag.strip().lower() in _WILDCARD_ON
    raise UnreadableItemError(
        f"{where}: its 'wildcard' flag is {flag!r}; expected 1, 0, true, false or empty"
    )


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__
