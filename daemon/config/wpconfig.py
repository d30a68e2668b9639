"""Read wp-config.php as text: the constants it defines and ``$table_prefix``.

PHP is never executed. ``define('NAME', literal)``, top-level ``const NAME = literal;`` and
``$table_prefix = literal;`` are read wherever they appear (inside ``if (!defined(...))``
or after ``defined(...) ||`` too); anything that is not a plain literal (``getenv()``, a
concatenation, a constant) becomes an :class:`Unreadable` that says where and why, and
never stops the other constants from being read. Reading never raises on the file's text;
problems are returned instead."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from closte_sync.daemon.config.php_lexer import Kind, Lexed, PhpValue, Token, tokenize

TABLE_PREFIX: Final = "$table_prefix"

# Constants whose values are secrets (CLOSTE_CLIENT_API_KEY, DB_PASSWORD, the salts...): an
# unreadable value is described by its shape only ("a call to base64_decode()"), never by
# any of its text, which may hold the secret or an encoding of it.
_SECRET_NAME = re.compile(r"PASSWORD|PASS$|PWD|KEY|SALT|SECRET|TOKEN", re.IGNORECASE)
_MAX_SHOWN: Final = 80
_NOT_DEFINE_BEFORE: Final = ("->", "?->", "::")

ProblemKind = Literal["unreadable", "duplicate", "syntax", "io"]


@dataclass(frozen=True)
class Defined:
    """A constant (or ``$table_prefix``) whose value is a literal."""

    name: str
    value: PhpValue
    line: int


@dataclass(frozen=True)
class Unreadable:
    """A constant whose value cannot be known without running PHP."""

    name: str
    line: int
    reason: str  # e.g. "value is an expression (getenv('X')), not a literal"


Definition = Defined | Unreadable


@dataclass(frozen=True)
class WpConfigProblem:
    path: Path
    line: int
    kind: ProblemKind
    message: str
    name: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}: " if self.line > 0 else f"{self.path}: "
        return where + (f"{self.name}: " if self.name else "") + self.message


@dataclass(frozen=True)
class WpConfig:
    path: Path
    definitions: Mapping[str, Definition]  # the definition PHP keeps for each name
    problems: tuple[WpConfigProblem, ...]

    def get(self, name: str) -> Definition | None:
        return self.definitions.get(name)

    def value(self, name: str, default: PhpValue = None) -> PhpValue:
        """The literal value of ``name``, or ``default`` when it is missing or unreadable."""
        found = self.definitions.get(name)
        return found.value if isinstance(found, Defined) else default


def php_truthy(value: PhpValue) -> bool:
    """PHP's idea of true: "", "0", 0, 0.0, null and false are false; all else is true."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def read_wp_config(path: Path) -> WpConfig:
    """Read ``path``; an unreadable file is a problem in the result, not an exception."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        problem = WpConfigProblem(path, 0, "io", f"cannot read the file: {reason}")
        return WpConfig(path, {}, (problem,))
    return parse_wp_config(data, path)


def parse_wp_config(data: bytes | str, path: Path) -> WpConfig:
    """Read the text of a wp-config.php file; never raises, whatever the text."""
    lexed = tokenize(data)
    reader = _Reader(lexed, path)
    reader.read()
    return WpConfig(path, dict(reader.definitions), tuple(reader.problems))


class _Reader:
    def __init__(self, lexed: Lexed, path: Path) -> None:
        self.lexed = lexed
        self.tokens = lexed.tokens
        self.path = path
        self.definitions: dict[str, Definition] = {}
        self.problems: list[WpConfigProblem] = [
            WpConfigProblem(path, lexed.line_of(p.offset), "syntax", p.message)
            for p in lexed.problems
        ]

    def read(self) -> None:
        i = 0
        tokens = self.tokens
        depth = 0  # braces: `const` declares a global constant only at the top level
        while i < len(tokens):
            token = tokens[i]
            if self._is_define_call(i):
                i = self._read_define(i)
            elif (
                token.kind is Kind.VARIABLE
                and token.text == TABLE_PREFIX
                and i + 1 < len(tokens)
                and tokens[i + 1].is_op("=")
            ):
                i = self._read_table_prefix(i)
            elif token.is_name("const") and depth == 0:
                i = self._read_const(i)
            else:
                if token.is_op("{"):
                    depth += 1
                elif token.is_op("}"):
                    depth = max(0, depth - 1)
                i += 1
        self.problems.sort(key=lambda p: p.line)

    # -- const NAME = value, OTHER = value; ----------------------------------------------

    def _read_const(self, i: int) -> int:
        j = i + 1
        while j + 1 < len(self.tokens):
            name, equals = self.tokens[j], self.tokens[j + 1]
            if name.kind is not Kind.NAME or not equals.is_op("="):
                return j  # not a constant declaration after all
            end, value_tokens = self._expression(j + 2, stop_at_comma=True)
            line = self._line(name)
            self._record(self._evaluate(name.text, value_tokens, line), guarded=False)
            if end >= len(self.tokens) or not self.tokens[end].is_op(","):
                return end
            j = end + 1
        return j

    # -- define(...) ---------------------------------------------------------------------

    def _is_define_call(self, i: int) -> bool:
        tokens = self.tokens
        if not tokens[i].is_name("define") or i + 1 >= len(tokens):
            return False
        if not tokens[i + 1].is_op("("):
            return False
        if i == 0:
            return True
        before = tokens[i - 1]
        if before.is_op(*_NOT_DEFINE_BEFORE) or before.is_name("function"):
            return False  # a method, or a function declaration named define
        # `\define(` is the global function; `Foo\define(` is some namespace's own.
        return not (before.is_op("\\") and i >= 2 and tokens[i - 2].kind is Kind.NAME)

    def _read_define(self, i: int) -> int:
        line = self._line(self.tokens[i])
        close, args = self._call_arguments(i + 1)
        if args is None:
            self._problem(line, "syntax", "define( has no closing parenthesis")
            return close
        if len(args) < 2:
            self._problem(line, "syntax", "define() needs a constant name and a value")
            return close + 1
        name_tokens = _unwrap(args[0])
        name_token = name_tokens[0] if len(name_tokens) == 1 else None
        if (
            name_token is None
            or name_token.kind is not Kind.STRING
            or not isinstance(name_token.value, str)
        ):
            shown = self._render(args[0])
            self._problem(line, "syntax", f"define() name is not a string literal ({shown})")
            return close + 1
        name = name_token.value
        self._record(self._evaluate(name, args[1], line), guarded=self._is_guarded(i, name))
        return close + 1

    def _call_arguments(self, open_index: int) -> tuple[int, list[list[Token]] | None]:
        """Index of the matching `)` and the top-level arguments between the parentheses.

        Without a matching `)`, the arguments are None and the index is where reading
        goes on (the end of the statement).
        """
        depth = 0
        args: list[list[Token]] = [[]]
        for j in range(open_index, len(self.tokens)):
            token = self.tokens[j]
            if token.is_op("(", "[", "{"):
                depth += 1
                if depth == 1:
                    continue
            elif token.is_op(")", "]", "}"):
                depth -= 1
                if depth == 0:
                    return j, [arg for arg in args if arg]
            elif token.is_op(",") and depth == 1:
                args.append([])
                continue
            elif token.kind is Kind.CLOSE_TAG or (token.is_op(";") and depth == 1):
                return j, None
            args[-1].append(token)
        return len(self.tokens), None

    def _is_guarded(self, define_index: int, name: str) -> bool:
        """Whether this define sits behind `defined('NAME') ||` or `if (!defined('NAME'))`."""
        start = define_index
        while start > 0 and define_index - start < 40:
            before = self.tokens[start - 1]
            if before.is_op(";", "}") or before.kind is Kind.CLOSE_TAG:
                break
            start -= 1
        window = self.tokens[start:define_index]
        for k in range(len(window) - 2):
            if (
                window[k].is_name("defined")
                and window[k + 1].is_op("(")
                and window[k + 2].kind is Kind.STRING
                and window[k + 2].value == name
            ):
                return True
        return False

    # -- $table_prefix = ...; ----------------------------------------------------------

    def _read_table_prefix(self, i: int) -> int:
        line = self._line(self.tokens[i])
        end, value_tokens = self._expression(i + 2, stop_at_comma=False)
        # A variable keeps its last assignment, unlike a constant.
        self.definitions[TABLE_PREFIX] = self._evaluate(TABLE_PREFIX, value_tokens, line)
        return end

    def _expression(self, start: int, *, stop_at_comma: bool) -> tuple[int, list[Token]]:
        """The tokens from ``start`` to the end of the statement (or a top-level comma)."""
        depth = 0
        j = start
        found: list[Token] = []
        while j < len(self.tokens):
            token = self.tokens[j]
            if token.kind is Kind.CLOSE_TAG:
                break
            if depth == 0 and (token.is_op(";") or (stop_at_comma and token.is_op(","))):
                break
            if token.is_op("(", "[", "{"):
                depth += 1
            elif token.is_op(")", "]", "}"):
                depth -= 1
            found.append(token)
            j += 1
        return j, found

    # -- values --------------------------------------------------------------------------

    def _evaluate(self, name: str, tokens: Sequence[Token], line: int) -> Definition:
        inner = _unwrap(tokens)
        sign = 1
        if len(inner) == 2 and inner[0].is_op("-", "+") and inner[1].kind is Kind.NUMBER:
            sign = -1 if inner[0].text == "-" else 1
            inner = inner[1:]
        secret = is_secret_name(name)
        if len(inner) == 1:
            token = inner[0]
            if token.kind in (Kind.STRING, Kind.NUMBER):
                if token.unreadable is not None:
                    reason = _secret_literal_reason(token) if secret else token.unreadable
                    return Unreadable(name, line, reason)
                value = token.value
                if isinstance(value, int | float) and not isinstance(value, bool):
                    value = sign * value
                return Defined(name, value, line)
            keyword = token.text.lower() if token.kind is Kind.NAME else ""
            if keyword in ("true", "false", "null"):
                return Defined(name, {"true": True, "false": False}.get(keyword), line)
        if len(inner) == 2 and inner[0].is_op("\\") and inner[1].is_name("true", "false", "null"):
            return Defined(name, {"true": True, "false": False}.get(inner[1].text.lower()), line)
        if not tokens:
            return Unreadable(name, line, "value is missing")
        if secret:
            return Unreadable(name, line, f"value is {describe_shape(inner)}, not a literal")
        shown = self._render(tokens)
        return Unreadable(name, line, f"value is an expression ({shown}), not a literal")

    def _record(self, definition: Definition, *, guarded: bool) -> None:
        name = definition.name
        first = self.definitions.get(name)
        if first is None:
            self.definitions[name] = definition
            if isinstance(definition, Unreadable):
                self._problem(definition.line, "unreadable", definition.reason, name)
            return
        if not guarded:
            self._problem(
                definition.line,
                "duplicate",
                f"defined again (first at line {first.line}); PHP keeps the first value",
                name,
            )

    def _render(self, tokens: Sequence[Token]) -> str:
        """The expression as written, one space between tokens, no comments (never used for
        a secret constant's value: see :func:`describe_shape`)."""
        parts: list[str] = []
        previous: Token | None = None
        for token in tokens:
            if previous is not None and token.start > previous.end:
                parts.append(" ")
            text = " ".join(token.text.split()) if token.kind is Kind.STRING else token.text
            parts.append(text)
            previous = token
        shown = "".join(parts)
        return shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 1] + "…"

    def _line(self, token: Token) -> int:
        return self.lexed.line_of(token.start)

    def _problem(self, line: int, kind: ProblemKind, message: str, name: str | None = None) -> None:
        self.problems.append(WpConfigProblem(self.path, line, kind, message, name))


def _unwrap(tokens: Sequence[Token]) -> Sequence[Token]:
    """Drop parentheses that wrap the whole expression: `(('x'))` is `'x'`."""
    while len(tokens) >= 2 and tokens[0].is_op("(") and tokens[-1].is_op(")"):
        depth = 0
        for k, token in enumerate(tokens):
            if token.is_op("("):
                depth += 1
            elif token.is_op(")"):
                depth -= 1
                if depth == 0 and k != len(tokens) - 1:
                    return tokens  # `(a) . (b)`: the first `(` closes early
        tokens = tokens[1:-1]
    return tokens


def is_secret_name(name: str) -> bool:
    """Whether the constant ``name`` holds a secret (a key, salt, password, secret, token)."""
    return bool(_SECRET_NAME.search(name))


def _secret_literal_reason(token: Token) -> str:
    """Why a secret's string or number literal cannot be read, without any of its text."""
    if token.kind is Kind.NUMBER:
        return "value is not a valid PHP number"
    reason = token.unreadable or ""
    if "interpolates" in reason:  # the lexer's reason quotes the variable: say it in general
        return "value is a string that interpolates a variable or an expression, not a literal"
    # The lexer's other reasons (bad UTF-8, a bad \u{...} escape) quote none of the text.
    return reason


_INFIX: Final = {
    ".": "a concatenation",
    "??": "a null-coalescing expression (??)",
    "?": "a conditional expression (?:)",
    "?:": "a conditional expression (?:)",
    "||": "a logical expression",
    "&&": "a logical expression",
    "or": "a logical expression",
    "and": "a logical expression",
    "+": "an arithmetic expression",
    "-": "an arithmetic expression",
    "*": "an arithmetic expression",
    "/": "an arithmetic expression",
}


def describe_shape(tokens: Sequence[Token]) -> str:
    """What kind of expression ``tokens`` is, in words, naming code (a function, an
    operator) but quoting none of its strings, numbers or names of constants."""
    tokens = _unwrap(tokens)
    top = _top_level(tokens)[1:]  # a leading operator is a sign, not an infix
    for op, words in _INFIX.items():
        parts = sum(1 for t in top if t.is_op(op) or t.is_name(op))
        if parts:
            return f"{words} of {parts + 1} parts" if op == "." else words
    callee = _callee(tokens)
    if callee is not None:
        return f"a call to {callee}()"
    if len(tokens) == 1:
        kind = tokens[0].kind
        if kind is Kind.NAME:
            return "another constant"
        if kind is Kind.VARIABLE:
            return "a variable"
        if kind is Kind.STRING:
            return "a string"
    if tokens and (tokens[0].is_op("[") or tokens[0].is_name("array")):
        return "an array"
    if tokens and tokens[0].is_op("!", "-", "+", "~"):
        return "a unary expression"
    return f"an expression of {len(tokens)} tokens"


def _top_level(tokens: Sequence[Token]) -> list[Token]:
    """The tokens outside any parentheses or brackets."""
    depth = 0
    found: list[Token] = []
    for token in tokens:
        if token.is_op("(", "[", "{"):
            depth += 1
        elif token.is_op(")", "]", "}"):
            depth -= 1
        elif depth == 0:
            found.append(token)
    return found


def _callee(tokens: Sequence[Token]) -> str | None:
    """``name`` (or ``Class::name``, ``\\name``) when ``tokens`` is one whole call."""
    if not tokens or not tokens[-1].is_op(")"):
        return None
    head: list[str] = []
    for k, token in enumerate(tokens):
        if token.is_op("("):
            if not head or head[-1] in ("\\", "::"):
                return None
            close = _matching_close(tokens, k)
            return "".join(head) if close == len(tokens) - 1 else None
        if token.kind is Kind.NAME or token.is_op("\\", "::"):
            head.append(token.text)
        else:
            return None
    return None


def _matching_close(tokens: Sequence[Token], open_index: int) -> int:
    depth = 0
    for k in range(open_index, len(tokens)):
        if tokens[k].is_op("(", "[", "{"):
            depth += 1
        elif tokens[k].is_op(")", "]", "}"):
            depth -= 1
            if depth == 0:
                return k
    return -1
