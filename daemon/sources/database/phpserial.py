"""Reading PHP-serialized option values safely.

WordPress stores network options with PHP's ``serialize()``. The ``phpserialize`` package is
a pure parser (it never evaluates anything); on top of it this module refuses PHP objects
(no ``object_hook`` is given, so the parser raises on them), trailing garbage, oversized
values and nesting deep enough to exhaust the stack, and reports all of it as one error type.
"""

from __future__ import annotations

import io

import phpserialize

MAX_VALUE_BYTES = 1_000_000  # a settings array is a few KB; anything huge is not ours to parse


class PhpSerialError(ValueError):
    """A value that is not a PHP-serialized value this daemon will read."""


def php_unserialize(value: str | bytes) -> object:
    """Parse one PHP-serialized value; arrays become dicts with str/int keys."""
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if len(data) > MAX_VALUE_BYTES:
        raise PhpSerialError(f"value too large ({len(data)} bytes > {MAX_VALUE_BYTES})")
    stream = io.BytesIO(data)
    try:
        parsed = phpserialize.load(stream, decode_strings=True, errors="strict")
    except RecursionError:
        raise PhpSerialError("value nested too deeply") from None
    except (ValueError, TypeError, EOFError, UnicodeDecodeError, IndexError) as exc:
        # phpserialize raises ValueError for objects ("object_hook not given") and bad
        # opcodes; say what we saw without echoing the whole value.
        raise PhpSerialError(f"not a PHP-serialized value this daemon reads: {exc}") from None
    rest = stream.read()
    if rest:
        raise PhpSerialError(f"{len(rest)} unexpected bytes after the serialized value")
    return parsed
