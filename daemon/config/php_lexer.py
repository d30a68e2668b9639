"""A small PHP tokenizer: enough of PHP's lexical rules to read wp-config.php as text.

It never executes anything. It knows PHP's open/close tags, the three comment styles,
single- and double-quoted strings with their escape rules, heredoc and nowdoc, numbers,
names, variables and operators. Everything else is an "other" token. It never raises: a
broken construct (an unterminated string or comment) ends the token stream and is
reported as a problem, as PHP would refuse the rest of the file too.

Text is decoded with ``surrogateescape`` so odd bytes survive; string values are built as
bytes (PHP strings are bytes) and must decode as UTF-8 to count as readable.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

PhpValue = str | int | float | bool | None

_PHP_INT_MAX: Final = 2**63 - 1

_OPEN_TAG = re.compile(r"<\?(?:php(?=\s|$)|=)", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*")
_VARIABLE = re.compile(r"\$[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*")
_NUMBER = re.compile(
    r"""
    0[xX][0-9a-fA-F]+(?:_[0-9a-fA-F]+)*
    | 0[bB][01]+(?:_[01]+)*
    | 0[oO][0-7]+(?:_[0-7]+)*
    | (?:[0-9]+(?:_[0-9]+)*)?\.[0-9]+(?:_[0-9]+)*(?:[eE][+-]?[0-9]+(?:_[0-9]+)*)?
    | [0-9]+(?:_[0-9]+)*\.(?:[0-9]+(?:_[0-9]+)*)?(?:[eE][+-]?[0-9]+(?:_[0-9]+)*)?
    | [0-9]+(?:_[0-9]+)*[eE][+-]?[0-9]+(?:_[0-9]+)*
    | [0-9]+(?:_[0-9]+)*
    """,
    re.VERBOSE,
)
_LINE_COMMENT_END = re.compile(r"\r\n|\r|\n|\?>")
_HEREDOC_START = re.compile(
    r"<<<[ \t]*(?P<q>[\"']?)(?P<id>[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)(?P=q)\r?\n"
)
# Longest first, so "===" is not read as "==" then "=".
_OPERATORS: Final = sorted(
    (
        "?->", "===", "!==", "<=>", "**=", "...", "<<=", ">>=", "??=",
        "->", "=>", "::", "||", "&&", "==", "!=", "<>", "<=", ">=", ".=", "+=", "-=", "*=",
        "/=", "%=", "&=", "|=", "^=", "??", "?:", "++", "--", "<<", ">>", "**", "#[",
    ),
    key=len,
    reverse=True,
)  # fmt: skip
_SIMPLE_ESCAPES: Final = {
    "n": b"\n",
    "t": b"\t",
    "r": b"\r",
    "v": b"\v",
    "e": b"\x1b",
    "f": b"\f",
    "\\": b"\\",
    "$": b"$",
}
_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")


class Kind(Enum):
    STRING = "string"
    NUMBER = "number"
    NAME = "name"
    VARIABLE = "variable"
    OPERATOR = "operator"
    OTHER = "other"
    CLOSE_TAG = "close-tag"  # `?>`: ends a statement, like `;`


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # the source text of the token
    start: int  # offsets into the decoded text
    end: int
    # For STRING and NUMBER tokens: the value, or why there is none.
    value: PhpValue = None
    unreadable: str | None = None

    def is_op(self, *ops: str) -> bool:
        return self.kind is Kind.OPERATOR and self.text in ops

    def is_name(self, *names: str) -> bool:
        return self.kind is Kind.NAME and self.text.lower() in names


@dataclass(frozen=True, slots=True)
class LexProblem:
    offset: int
    message: str


@dataclass(frozen=True)
class Lexed:
    text: str
    tokens: tuple[Token, ...]
    problems: tuple[LexProblem, ...]
    line_starts: tuple[int, ...]

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset)


def decode_source(data: bytes | str) -> str:
    """Source text without a byte-order mark; undecodable bytes kept as surrogates."""
    text = data.decode("utf-8", errors="surrogateescape") if isinstance(data, bytes) else data
    return text.removeprefix("\ufeff")


def _line_starts(text: str) -> tuple[int, ...]:
    # PHP counts "\r\n", "\r" and "\n" as line ends.
    starts = [0]
    starts.extend(m.end() for m in re.finditer(r"\r\n|\r|\n", text))
    return tuple(starts)


def _bytes_of(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


def _as_text(raw: bytes) -> tuple[str | None, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "value is not valid UTF-8 text"


def single_quoted_value(body: str) -> tuple[str | None, str | None]:
    """The value of a single-quoted literal's body: only \\' and \\\\ are escapes."""
    return _as_text(_bytes_of(re.sub(r"\\([\\'])", r"\1", body)))


def double_quoted_value(body: str, *, heredoc: bool = False) -> tuple[str | None, str | None]:
    """The value of a double-quoted (or heredoc) body, or why it is not a literal."""
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == "\\" and i + 1 < n:
            d = body[i + 1]
            if d in _SIMPLE_ESCAPES:
                out += _SIMPLE_ESCAPES[d]
                i += 2
            elif d == '"' and not heredoc:
                out += b'"'
                i += 2
            elif d in _OCT:
                j = i + 1
                while j < n and j < i + 4 and body[j] in _OCT:
                    j += 1
                out.append(int(body[i + 1 : j], 8) & 0xFF)  # PHP keeps the low byte
                i = j
            elif d == "x" and i + 2 < n and body[i + 2] in _HEX:
                j = i + 2
                while j < n and j < i + 4 and body[j] in _HEX:
                    j += 1
                out.append(int(body[i + 2 : j], 16))
                i = j
            elif d == "u" and i + 2 < n and body[i + 2] == "{":
                close = body.find("}", i + 3)
                digits = body[i + 3 : close] if close != -1 else ""
                if not digits or any(ch not in _HEX for ch in digits):
                    return None, "string has an invalid \\u{...} escape (PHP refuses the file)"
                code = int(digits, 16)
                if code > 0x10FFFF:
                    return None, "string has a \\u{...} escape beyond U+10FFFF"
                out += chr(code).encode("utf-8", errors="surrogatepass")
                i = close + 1
            else:
                out += _bytes_of(c + d)  # unknown escapes stay as written
                i += 2
        elif c == "$" and i + 1 < n and _NAME.match(body, i + 1):
            name = _VARIABLE.match(body, i)
            shown = name.group(0) if name else "$"
            return None, f"value is a string that interpolates the variable {shown}, not a literal"
        elif c == "{" and i + 1 < n and body[i + 1] == "$":
            return None, "value is a string that interpolates an expression ({$...}), not a literal"
        else:
            out += _bytes_of(c)
            i += 1
    return _as_text(bytes(out))


def _number_value(text: str) -> tuple[int | float | None, str | None]:
    digits = text.replace("_", "")
    lower = digits.lower()
    try:
        if lower.startswith("0x"):
            value: int | float = int(digits[2:], 16)
        elif lower.startswith("0b"):
            value = int(digits[2:], 2)
        elif lower.startswith("0o"):
            value = int(digits[2:], 8)
        elif any(ch in lower for ch in ".e"):
            return float(digits), None
        elif len(digits) > 1 and digits.startswith("0"):
            value = int(digits, 8)  # a leading zero means octal in PHP
        else:
            value = int(digits)
    except ValueError:
        return None, f"{text} is not a valid PHP number"
    if value > _PHP_INT_MAX:
        return float(value), None  # PHP turns an overflowing integer into a float
    return value, None


def _skip_interpolation(text: str, i: int) -> int:
    """From a `{$` inside a double-quoted string, the offset just past its closing `}`."""
    depth = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            close = text.find(c, i + 1)
            i = n if close == -1 else close + 1
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _heredoc_end(text: str, body_start: int, label: str) -> tuple[int, int, str] | None:
    """(body end, token end, closing indentation) of a heredoc/nowdoc, or None."""
    closing = re.compile(
        r"^([ \t]*)" + re.escape(label) + r"(?![A-Za-z0-9_\x80-\U0010ffff])", re.MULTILINE
    )
    for match in closing.finditer(text, body_start):
        # The closing marker must start a line (or be the first line of an empty body).
        body_end = match.start()
        if body_end == body_start:
            return body_start, match.end(), match.group(1)
        if text[body_end - 1] in "\r\n":
            end = body_end - 1
            if text[end - 1 : end + 1] == "\r\n":
                end -= 1
            return max(end, body_start), match.end(), match.group(1)
    return None


def _strip_indent(body: str, indent: str) -> str:
    if not indent:
        return body
    lines = body.splitlines(keepends=True)
    return "".join(line.removeprefix(indent) for line in lines)


def tokenize(data: bytes | str) -> Lexed:
    text = decode_source(data)
    tokens: list[Token] = []
    problems: list[LexProblem] = []
    n = len(text)

    def add(
        kind: Kind, start: int, end: int, value: PhpValue = None, why: str | None = None
    ) -> None:
        tokens.append(Token(kind, text[start:end], start, end, value, why))

    opening = _OPEN_TAG.search(text)
    i = opening.end() if opening else n
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif text.startswith("?>", i):
            add(Kind.CLOSE_TAG, i, i + 2)
            opening = _OPEN_TAG.search(text, i + 2)  # the text between is inline HTML
            i = opening.end() if opening else n
        elif text.startswith("//", i) or (c == "#" and not text.startswith("#[", i)):
            # A line comment also ends at `?>`.
            m = _LINE_COMMENT_END.search(text, i)
            i = m.start() if m else n
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            if close == -1:
                problems.append(LexProblem(i, "comment /* is never closed"))
                break
            i = close + 2
        elif c == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                problems.append(LexProblem(i, "single-quoted string is never closed"))
                break
            body = text[i + 1 : j]
            sq_value, why = single_quoted_value(body)
            add(Kind.STRING, i, j + 1, sq_value, why)
            i = j + 1
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                if text[j] == "\\":
                    j += 2
                elif text.startswith("{$", j):
                    j = _skip_interpolation(text, j)
                else:
                    j += 1
            if j >= n:
                problems.append(LexProblem(i, "double-quoted string is never closed"))
                break
            dq_value, why = double_quoted_value(text[i + 1 : j])
            add(Kind.STRING, i, j + 1, dq_value, why)
            i = j + 1
        elif (m := _HEREDOC_START.match(text, i)) is not None:
            label, nowdoc = m.group("id"), m.group("q") == "'"
            found = _heredoc_end(text, m.end(), label)
            if found is None:
                problems.append(LexProblem(i, f"heredoc <<<{label} is never closed"))
                break
            body_end, end, indent = found
            body = _strip_indent(text[m.end() : body_end], indent)
            if nowdoc:
                hd_value, why = _as_text(_bytes_of(body))
            else:
                hd_value, why = double_quoted_value(body, heredoc=True)
            add(Kind.STRING, i, end, hd_value, why)
            i = end
        elif c == "`":
            close = text.find("`", i + 1)
            end = n if close == -1 else close + 1
            add(Kind.OTHER, i, end, None, "a shell command (backticks)")
            i = end
        elif (m := _VARIABLE.match(text, i)) is not None:
            add(Kind.VARIABLE, i, m.end())
            i = m.end()
        elif (m := _NUMBER.match(text, i)) is not None and (c.isdigit() or c == "."):
            number, why = _number_value(m.group(0))
            add(Kind.NUMBER, i, m.end(), number, why)
            i = m.end()
        elif (m := _NAME.match(text, i)) is not None:
            add(Kind.NAME, i, m.end())
            i = m.end()
        else:
            op = next((o for o in _OPERATORS if text.startswith(o, i)), c)
            add(Kind.OPERATOR, i, i + len(op))
            i += len(op)
    return Lexed(text, tuple(tokens), tuple(problems), _line_starts(text))
