"""Property-based tests of the wp-config.php reader: literals round-trip, layout never matters,
and no text makes it raise."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from closte_sync.daemon.config.php_lexer import PhpValue
from closte_sync.daemon.config.wpconfig import TABLE_PREFIX, Defined, parse_wp_config

PATH = Path("/srv/www/wp-config.php")
PHP_INT_MAX = 2**63 - 1


def single_quoted(data: st.DataObject, text: str) -> str:
    """A PHP single-quoted literal of ``text``; a lone backslash is escaped only sometimes."""
    out = []
    for i, ch in enumerate(text):
        if ch == "'":
            out.append("\\'")
        elif ch == "\\":
            following = text[i + 1] if i + 1 < len(text) else ""
            # PHP reads "\x" as two characters, unless x is ' or \ (or it is the last one,
            # where it would escape the closing quote).
            optional = following not in ("", "'", "\\")
            out.append("\\" if optional and data.draw(st.booleans()) else "\\\\")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def double_quoted(data: st.DataObject, text: str) -> str:
    """A PHP double-quoted literal of ``text``, using every escape form at random."""
    out = []
    for ch in text:
        code = ord(ch)
        forms = []
        if ch in '\\"$':
            forms.append("\\" + ch)
        else:
            forms.append(ch)
            named = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\v": "\\v", "\x1b": "\\e", "\f": "\\f"}
            if ch in named:
                forms.append(named[ch])
        if code < 0x80:
            forms.append(f"\\x{code:02x}")
            forms.append(f"\\{code:03o}")
        forms.append(f"\\u{{{code:x}}}")
        out.append(data.draw(st.sampled_from(forms)))
    return '"' + "".join(out) + '"'


@given(st.data(), st.text())
def test_any_string_round_trips_through_a_single_quoted_literal(
    data: st.DataObject, text: str
) -> None:
    config = parse_wp_config(f"<?php\ndefine('X', {single_quoted(data, text)});\n", PATH)
    assert config.get("X") == Defined("X", text, 2)
    assert config.problems == ()


@given(st.data(), st.text())
def test_any_string_round_trips_through_a_double_quoted_literal(
    data: st.DataObject, text: str
) -> None:
    config = parse_wp_config(f"<?php\ndefine('X', {double_quoted(data, text)});\n", PATH)
    assert config.get("X") == Defined("X", text, 2)
    assert config.problems == ()


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
names = st.builds(
    str.__add__, st.sampled_from(_UPPER), st.text(alphabet=_UPPER + "0123456789", max_size=20)
)
values = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-PHP_INT_MAX, max_value=PHP_INT_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
comment_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n?*"),
    max_size=15,
)


@st.composite
def gaps(draw: st.DrawFn) -> str:
    """White space, maybe with a comment in any of PHP's three styles."""
    space = draw(st.sampled_from(["", " ", "  ", "\t", "\n", "\r\n", " \n\t"]))
    style = draw(st.sampled_from(["none", "block", "line", "hash"]))
    body = draw(comment_text)
    if style == "block":
        return f"{space}/*{body}*/{space}"
    if style == "line":
        return f"{space}//{body}\n"
    if style == "hash":
        return f"{space}#{body.lstrip('[')}\n"
    return space


def cased(draw: st.DrawFn, word: str) -> str:
    return "".join(ch.upper() if draw(st.booleans()) else ch.lower() for ch in word)


def literal(draw: st.DrawFn, data: st.DataObject, value: PhpValue) -> str:
    if isinstance(value, bool) or value is None:
        return cased(draw, {True: "true", False: "false", None: "null"}[value])
    if isinstance(value, int | float):
        text = repr(value)
        return text if text[0] != "-" else "-" + draw(gaps()) + text[1:]
    quote = draw(st.sampled_from([single_quoted, double_quoted]))
    return quote(data, value)


@st.composite
def wp_config_files(draw: st.DrawFn) -> tuple[str, dict[str, PhpValue], str]:
    data = draw(st.data())
    constants = draw(st.dictionaries(names, values, max_size=6))
    prefix = draw(st.text(alphabet="abcxyz019_", min_size=1, max_size=8))
    statements = []
    for name, value in constants.items():
        g = [draw(gaps()) for _ in range(7)]
        name_literal = draw(st.sampled_from([f"'{name}'", f'"{name}"']))
        third = draw(st.sampled_from(["", f",{g[5]}true", f",{g[5]}FALSE"]))
        statements.append(
            f"{cased(draw, 'define')}{g[0]}({g[1]}{name_literal}{g[2]},{g[3]}"
            f"{literal(draw, data, value)}{g[4]}{third}){g[6]};"
        )
    statements.append(f"$table_prefix{draw(gaps())}={draw(gaps())}'{prefix}'{draw(gaps())};")
    order = draw(st.permutations(statements))
    body = "".join(statement + draw(gaps()) for statement in order)
    # PHP needs white space after the open tag.
    return f"<?php\n{draw(gaps())}{body}", constants, prefix


@settings(max_examples=100)
@given(wp_config_files())
def test_layout_comments_and_casing_do_not_change_values(
    case: tuple[str, dict[str, PhpValue], str],
) -> None:
    text, constants, prefix = case
    config = parse_wp_config(text, PATH)
    assert config.problems == ()
    read = {name: config.value(name, "<missing>") for name in constants}
    assert read == constants
    for name, value in constants.items():
        assert type(read[name]) is type(value)
    assert config.value(TABLE_PREFIX) == prefix


PHP_FRAGMENTS = st.sampled_from(
    [
        "<?php ", "?>", "define", "DEFINE", "defined", "(", ")", ",", ";", "'", '"', "\\",
        "/*", "*/", "//", "#", "#[", "\n", "\r", "<<<", "<<<'E'\n", "EOT", "E", "$table_prefix",
        "=", "$x", "{$", "}", "`", "1", "0x", "1e", ".", "-", "true", "null", "||", "!",
        "'A'", "'B'", "\\u{", "\\x4", "\\1", " ", "const", "{", "A",
    ]
)  # fmt: skip


@settings(max_examples=300)
@given(st.one_of(st.text(), st.lists(PHP_FRAGMENTS, max_size=60).map("".join)))
def test_reader_never_raises_on_text(text: str) -> None:
    config = parse_wp_config(text, PATH)
    for problem in config.problems:
        assert str(problem).startswith(f"{PATH}:")


@given(st.binary())
def test_reader_never_raises_on_bytes(data: bytes) -> None:
    config = parse_wp_config(b"<?php " + data, PATH)
    assert isinstance(config.definitions, dict)
