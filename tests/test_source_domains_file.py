"""The domains file source: parsing, reading, and watching real files as editors write them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from closte_sync.daemon.events import Event, Level, MemorySink
from closte_sync.daemon.settings import DomainsFileSettings
from closte_sync.daemon.sources.base import SourceSnapshot
from closte_sync.daemon.sources.domains_file import (
    DomainsFileSource,
    decode_domains_bytes,
    parse_domains_text,
)

TIMEOUT = 10.0
SETTLE_MS = 30
NEVER_MS = 600_000  # a hold that never runs out within a test


# -- helpers ----------------------------------------------------------------------------------


def make_source(path: Path, sink: MemorySink, hold_ms: int = NEVER_MS) -> DomainsFileSource:
    return DomainsFileSource(path, sink, settle_ms=SETTLE_MS, hold_ms=hold_ms, recheck_ms=200)


async def next_snapshot(snapshots: AsyncIterator[SourceSnapshot]) -> SourceSnapshot:
    return await asyncio.wait_for(anext(snapshots), TIMEOUT)


async def snapshots_until(
    snapshots: AsyncIterator[SourceSnapshot], done: Callable[[SourceSnapshot], bool]
) -> list[SourceSnapshot]:
    """Every snapshot received up to and including the first one ``done`` accepts."""
    seen: list[SourceSnapshot] = []

    async def collect() -> None:
        async for snapshot in snapshots:
            seen.append(snapshot)
            if done(snapshot):
                return
        raise AssertionError(f"the watch ended early; seen: {[set(s.domains) for s in seen]}")

    await asyncio.wait_for(collect(), TIMEOUT)
    return seen


def start_collecting(
    snapshots: AsyncIterator[SourceSnapshot], done: Callable[[SourceSnapshot], bool]
) -> asyncio.Task[list[SourceSnapshot]]:
    """Consume the watch in the background, as the daemon does, while a test edits the file."""
    return asyncio.create_task(snapshots_until(snapshots, done))


def has_exactly(*names: str) -> Callable[[SourceSnapshot], bool]:
    return lambda snapshot: set(snapshot.domains) == set(names)


async def wait_settling(sink: MemorySink, reason: str) -> Event:
    """Wait until the source has seen a half-written state (and is holding it back)."""
    return await sink.wait_for(
        lambda e: bool(e.details.get("settling")) and e.details.get("reason") == reason, TIMEOUT
    )


def write_via_rename(path: Path, text: str) -> None:
    """What vim and most editors do: write a temporary file beside it, rename it over."""
    temp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


async def write(path: Path, text: str) -> None:
    """Write in place (open, truncate, write), off the event loop."""
    await asyncio.to_thread(path.write_text, text, encoding="utf-8")


async def rename_over(path: Path, text: str) -> None:
    await asyncio.to_thread(write_via_rename, path, text)


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def domains_path(tmp_path: Path) -> Path:
    path = tmp_path / "domains.txt"
    path.write_text("a.com\nb.com\n", encoding="utf-8")
    return path


@pytest.fixture
async def watched(
    domains_path: Path, sink: MemorySink
) -> AsyncIterator[tuple[DomainsFileSource, AsyncIterator[SourceSnapshot]]]:
    """A source watching ``domains_path`` whose first snapshot (a.com, b.com) was taken."""
    source = make_source(domains_path, sink)
    snapshots = source.watch()
    first = await next_snapshot(snapshots)
    assert set(first.domains) == {"a.com", "b.com"}
    sink.events.clear()
    yield source, snapshots
    await source.aclose()


# -- parsing ----------------------------------------------------------------------------------


def test_comments_blanks_wildcards_and_unicode_are_read() -> None:
    text = (
        "# the shop network\n"
        "\n"
        "shop.example.com  # the shop\n"
        "   \t\n"
        "*.example.org\n"
        "bücher.de#no space before the comment\n"
        "  Indented.Example.NET.  \n"
    )
    domains, problems = parse_domains_text(text, "domains.txt")
    assert problems == []
    assert list(domains) == [
        "shop.example.com",
        "*.example.org",
        "xn--bcher-kva.de",
        "indented.example.net",
    ]
    assert domains["shop.example.com"].place == "domains.txt:3"
    assert domains["shop.example.com"].origin == "file"
    assert domains["*.example.org"].wildcard
    assert not domains["xn--bcher-kva.de"].wildcard
    assert domains["xn--bcher-kva.de"].place == "domains.txt:6"
    assert domains["indented.example.net"].place == "domains.txt:7"


def test_bom_and_crlf_are_tolerated() -> None:
    data = "\ufeffa.com\r\n# note\r\nb.com\r\n".encode()
    domains, problems = parse_domains_text(decode_domains_bytes(data), "d.txt")
    assert problems == []
    assert {name: d.place for name, d in domains.items()} == {
        "a.com": "d.txt:1",
        "b.com": "d.txt:3",
    }


def test_each_bad_line_is_named_with_its_reason_and_good_lines_still_count() -> None:
    long_label = "x" * 64
    text = "\n".join(
        [
            "good.com",  # 1
            f"{long_label}.com",  # 2
            "bad_name.com",  # 3
            "a..com",  # 4
            "localhost",  # 5
            "https://shop.example.com/",  # 6
            "192.168.1.1",  # 7
            "two.com words.com",  # 8
            "shop.example.com:8080",  # 9
            "also-good.org",  # 10
        ]
    )
    domains, problems = parse_domains_text(text, "/etc/closte-sync/domains.txt")
    assert set(domains) == {"good.com", "also-good.org"}
    by_place = {p.place: p for p in problems}
    expected = {
        2: "label too long",
        3: "bad character '_'",
        4: "empty label",
        5: "not a domain",
        6: "URL",
        7: "IP address",
        8: "one domain per line",
        9: "port",
    }
    assert set(by_place) == {f"/etc/closte-sync/domains.txt:{n}" for n in expected}
    for line, reason in expected.items():
        problem = by_place[f"/etc/closte-sync/domains.txt:{line}"]
        assert reason in problem.message, (line, problem.message)
        assert problem.level is Level.ERROR
    assert str(by_place["/etc/closte-sync/domains.txt:3"]).startswith(
        "/etc/closte-sync/domains.txt:3: 'bad_name.com'"
    )


def test_duplicates_after_normalisation_warn_naming_both_lines() -> None:
    text = "example.com\nbücher.de\nExample.COM\nxn--bcher-kva.de\nexample.com.\n"
    domains, problems = parse_domains_text(text, "d.txt")
    assert set(domains) == {"example.com", "xn--bcher-kva.de"}
    assert domains["example.com"].place == "d.txt:1"  # the first line counts
    assert [(p.place, p.level) for p in problems] == [
        ("d.txt:3", Level.WARNING),
        ("d.txt:4", Level.WARNING),
        ("d.txt:5", Level.WARNING),
    ]
    assert "d.txt:1" in problems[0].message
    assert "d.txt:2" in problems[1].message
    assert "bücher.de" in problems[1].message  # shown the way people read it


def test_a_line_that_is_not_utf8_is_a_problem_for_that_line_only() -> None:
    data = b"a.com\nb\xfccher.de\nc.com\n\xff\xfe\nd.com  # caf\xe9 in Latin-1\n"
    domains, problems = parse_domains_text(decode_domains_bytes(data), "d.txt")
    assert set(domains) == {"a.com", "c.com", "d.com"}
    assert [(p.place, p.message, p.level) for p in problems] == [
        ("d.txt:2", "not valid UTF-8 (byte 0xfc)", Level.ERROR),
        ("d.txt:4", "not valid UTF-8 (byte 0xff)", Level.ERROR),
        ("d.txt:5", "the comment is not valid UTF-8 (byte 0xe9)", Level.WARNING),
    ]


def test_an_empty_text_has_no_domains_and_no_problems() -> None:
    assert parse_domains_text("", "d.txt") == ({}, [])
    assert parse_domains_text("\ufeff\n\n# only comments\n", "d.txt") == ({}, [])


# -- reading ----------------------------------------------------------------------------------


async def test_read_gives_the_file_domains_and_reports_problems(
    tmp_path: Path, sink: MemorySink
) -> None:
    path = tmp_path / "domains.txt"
    await asyncio.to_thread(
        path.write_bytes, b"a.com\nnot a domain\n\xe9.com\nb.com"
    )  # no final newline at start: fine
    source = make_source(path, sink)
    snapshot = await source.read()
    assert snapshot.source == "domains-file"
    assert snapshot.healthy
    assert set(snapshot.domains) == {"a.com", "b.com"}
    assert [p.place for p in snapshot.problems] == [f"{path}:2", f"{path}:3"]
    assert snapshot.facts["present"] is True
    problem_events = [e for e in sink.events if e.details.get("place")]
    assert [e.details["place"] for e in problem_events] == [f"{path}:2", f"{path}:3"]
    assert all(e.kind == "domains-file" and e.level is Level.ERROR for e in problem_events)


async def test_a_missing_file_is_no_file_not_no_domains(tmp_path: Path, sink: MemorySink) -> None:
    source = make_source(tmp_path / "nowhere" / "domains.txt", sink)
    snapshot = await source.read()
    # Not healthy: the daemon must neither add nor remove anything because of it.
    assert not snapshot.healthy
    assert dict(snapshot.domains) == {}
    assert snapshot.facts["present"] is False
    (problem,) = snapshot.problems
    assert problem.level is Level.WARNING and "empty the file" in problem.message
    assert any("no domains file" in e.message for e in sink.events)


async def test_a_path_that_is_a_directory_is_unhealthy(tmp_path: Path, sink: MemorySink) -> None:
    path = tmp_path / "domains.txt"
    await asyncio.to_thread(path.mkdir)
    snapshot = await make_source(path, sink).read()
    assert not snapshot.healthy
    assert dict(snapshot.domains) == {}
    assert snapshot.problems[0].place == str(path)
    assert "cannot read" in snapshot.problems[0].message
    assert snapshot.facts == {"present": True, "readable": False, "path": str(path)}
    assert any(e.level is Level.ERROR and "cannot read" in e.message for e in sink.events)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
async def test_an_unreadable_file_keeps_the_last_good_domains(
    domains_path: Path, sink: MemorySink
) -> None:
    source = make_source(domains_path, sink)
    await source.read()
    await asyncio.to_thread(domains_path.chmod, 0)
    try:
        snapshot = await source.read()
    finally:
        await asyncio.to_thread(domains_path.chmod, 0o644)
    assert not snapshot.healthy
    assert set(snapshot.domains) == {"a.com", "b.com"}
    assert "Permission denied" in snapshot.problems[0].message


def test_from_settings_needs_a_path(tmp_path: Path) -> None:
    assert DomainsFileSource.from_settings(DomainsFileSettings()) is None
    source = DomainsFileSource.from_settings(DomainsFileSettings(path=tmp_path / "d.txt"))
    assert source is not None and source.path == tmp_path / "d.txt"
    assert source.name == "domains-file"


def test_bad_timings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="settle_ms"):
        DomainsFileSource(tmp_path / "d.txt", settle_ms=0)
    with pytest.raises(ValueError, match="hold_ms"):
        DomainsFileSource(tmp_path / "d.txt", settle_ms=500, hold_ms=100)


# -- watching: editors' write patterns --------------------------------------------------------


async def test_write_to_temp_then_rename_over(
    domains_path: Path, watched: tuple[DomainsFileSource, AsyncIterator[SourceSnapshot]]
) -> None:
    _, snapshots = watched
    await rename_over(domains_path, "a.com\nb.com\nc.com\n")
    seen = await snapshots_until(snapshots, has_exactly("a.com", "b.com", "c.com"))
    assert len(seen) == 1  # the temporary file made no snapshot of its own
    # The watch is on the folder, so the new file (a new inode) keeps being watched.
    await rename_over(domains_path, "c.com\n")
    seen = await snapshots_until(snapshots, has_exactly("c.com"))
    assert all("c.com" in s.domains for s in seen)


async def test_truncate_then_write_in_place(
    domains_path: Path,
    sink: MemorySink,
    watched: tuple[DomainsFileSource, AsyncIterator[SourceSnapshot]],
) -> None:
    _, snapshots = watched
    collecting = start_collecting(snapshots, has_exactly("a.com", "b.com", "d.com"))
    with domains_path.open("w", encoding="utf-8") as out:  # like `>`: empty for a while
        out.flush()
        await wait_settling(sink, "lost all its domains")
        out.write("a.com\nb.com\nd.com\n")
    seen = await collecting
    assert all({"a.com", "b.com"} <= set(s.domains) for s in seen), seen


async def test_delete_then_recreate(
    domains_path: Path,
    sink: MemorySink,
    watched: tuple[DomainsFileSource, AsyncIterator[SourceSnapshot]],
) -> None:
    _, snapshots = watched
    collecting = start_collecting(snapshots, has_exactly("a.com", "b.com", "e.com"))
    await asyncio.to_thread(domains_path.unlink)
    await wait_settling(sink, "has vanished")
    await write(domains_path, "b.com\na.com\ne.com\n")
    seen = await collecting
    assert all({"a.com", "b.com"} <= set(s.domains) for s in seen), seen
    assert all(s.facts["present"] for s in seen)


async def test_append_counts_without_waiting_for_the_hold(
    domains_path: Path, watched: tuple[DomainsFileSource, AsyncIterator[SourceSnapshot]]
) -> None:
    _, snapshots = watched  # the hold is ten minutes: an addition must not wait for it
    with domains_path.open("a", encoding="utf-8") as out:
        out.write("c.com\n")
    seen = await snapshots_until(snapshots, has_exactly("a.com", "b.com", "c.com"))
    assert len(seen) == 1
    assert seen[0].domains["c.com"].place == f"{domains_path}:3"


async def test_a_slow_writer_stopping_mid_line_is_held_back(
    domains_path: Path,
    sink: MemorySink,
    watched: tuple[DomainsFileSource, AsyncIterator[SourceSnapshot]],
) -> None:
    _, snapshots = watched
    collecting = start_collecting(snapshots, has_exactly("a.com", "b.com", "c.com"))
    with domains_path.open("w", encoding="utf-8") as out:
        out.write("a.com\nb.c")  # "b.c" alone would be a valid (wrong) name
        out.flush()
        # Still a prefix of the old text, so that is the reason given first.
        await wait_settling(sink, "lost its trailing part")
        out.write("om\nc.")
        out.flush()
        await wait_settling(sink, "ends in the middle of a line")
        out.write("com\n")
    seen = await collecting
    assert all({"a.com", "b.com"} <= set(s.domains) for s in seen), seen
    assert not any({"b.c", "c"} & set(s.domains) for s in seen)


async def test_a_slow_append_stopping_mid_line_is_held_back(
    domains_path: Path,
    sink: MemorySink,
    watched: tuple[DomainsFileSource, AsyncIterator[SourceSnapshot]],
) -> None:
    _, snapshots = watched
    collecting = start_collecting(snapshots, has_exactly("a.com", "b.com", "c.com"))
    with domains_path.open("a", encoding="utf-8") as out:
        out.write("c.c")
        out.flush()
        await wait_settling(sink, "ends in the middle of a line")
        out.write("om\n")
    seen = await collecting
    assert not any("c.c" in s.domains for s in seen), seen


async def test_a_rewrite_paused_at_a_line_end_is_held_back(
    domains_path: Path,
    sink: MemorySink,
    watched: tuple[DomainsFileSource, AsyncIterator[SourceSnapshot]],
) -> None:
    _, snapshots = watched
    collecting = start_collecting(snapshots, has_exactly("a.com", "b.com", "f.com"))
    with domains_path.open("w", encoding="utf-8") as out:
        out.write("a.com\n")  # a prefix of the old file: b.com may still be on its way
        out.flush()
        await wait_settling(sink, "lost its trailing part")
        out.write("b.com\nf.com\n")
    seen = await collecting
    assert all({"a.com", "b.com"} <= set(s.domains) for s in seen), seen


async def test_a_removal_the_operator_meant_counts_after_the_hold(
    domains_path: Path, sink: MemorySink
) -> None:
    source = make_source(domains_path, sink, hold_ms=200)
    snapshots = source.watch()
    try:
        await next_snapshot(snapshots)
        await rename_over(domains_path, "a.com\n")
        seen = await snapshots_until(snapshots, has_exactly("a.com"))
        assert len(seen) == 1
        assert any("using it as it is" in e.message for e in sink.events)
        change = await sink.wait_for(lambda e: "changed" in e.message)
        assert change.details["removed"] == ["b.com"]
        # Emptying the file on purpose also counts, after the hold.
        await rename_over(domains_path, "")
        seen = await snapshots_until(snapshots, has_exactly())
        assert seen[-1].healthy and seen[-1].facts["present"] is True
    finally:
        await source.aclose()


async def test_rewriting_the_same_content_yields_nothing(
    domains_path: Path, watched: tuple[DomainsFileSource, AsyncIterator[SourceSnapshot]]
) -> None:
    _, snapshots = watched
    await rename_over(domains_path, "a.com\nb.com\n")
    await write(domains_path, "a.com\nb.com\n")
    await rename_over(domains_path, "a.com\nb.com\ng.com\n")
    # The first snapshot after the no-op writes is the real change.
    assert set((await next_snapshot(snapshots)).domains) == {"a.com", "b.com", "g.com"}


async def test_a_new_bad_line_yields_a_snapshot_with_the_problem(
    domains_path: Path,
    sink: MemorySink,
    watched: tuple[DomainsFileSource, AsyncIterator[SourceSnapshot]],
) -> None:
    _, snapshots = watched
    with domains_path.open("a", encoding="utf-8") as out:
        out.write("bad..name\n")
    snapshot = await next_snapshot(snapshots)
    assert set(snapshot.domains) == {"a.com", "b.com"}
    assert [p.place for p in snapshot.problems] == [f"{domains_path}:3"]
    event = await sink.wait_for(lambda e: e.details.get("place") == f"{domains_path}:3")
    assert "empty label" in event.message


async def test_the_file_appearing_later_is_seen(tmp_path: Path, sink: MemorySink) -> None:
    path = tmp_path / "domains.txt"
    source = make_source(path, sink)
    snapshots = source.watch()
    try:
        first = await next_snapshot(snapshots)
        assert first.facts["present"] is False
        await write(path, "*.shop.example\n")
        # The just-created, still empty file may show first; it drops nothing.
        seen = await snapshots_until(snapshots, has_exactly("*.shop.example"))
        assert all(s.facts["present"] is True for s in seen)
    finally:
        await source.aclose()


async def test_the_folder_appearing_later_is_seen(tmp_path: Path, sink: MemorySink) -> None:
    path = tmp_path / "later" / "domains.txt"
    source = make_source(path, sink)  # looks again every 200 ms while the folder is missing
    snapshots = source.watch()
    try:
        assert (await next_snapshot(snapshots)).facts["present"] is False
        await asyncio.to_thread(path.parent.mkdir)
        await write(path, "a.com\n")
        seen = await snapshots_until(snapshots, has_exactly("a.com"))
        assert seen[-1].facts["present"] is True
    finally:
        await source.aclose()


async def test_a_path_replaced_by_a_directory_keeps_the_last_good_domains(
    domains_path: Path,
    sink: MemorySink,
    watched: tuple[DomainsFileSource, AsyncIterator[SourceSnapshot]],
) -> None:
    _, snapshots = watched
    collecting = start_collecting(snapshots, lambda s: not s.healthy)
    await asyncio.to_thread(domains_path.unlink)
    await wait_settling(sink, "has vanished")
    await asyncio.to_thread(domains_path.mkdir)
    seen = await collecting
    assert len(seen) == 1
    assert set(seen[0].domains) == {"a.com", "b.com"}  # kept: nothing gets deleted
    assert "cannot read" in seen[0].problems[0].message
    await sink.wait_for(lambda e: e.level is Level.ERROR and "keeping the last 2" in e.message)
    # Back to a readable file: healthy again with what it says now.
    await asyncio.to_thread(domains_path.rmdir)
    await write(domains_path, "a.com\nb.com\nh.com\n")
    seen = await snapshots_until(snapshots, lambda s: s.healthy)
    assert set(seen[-1].domains) == {"a.com", "b.com", "h.com"}


async def test_aclose_ends_the_watch(domains_path: Path, sink: MemorySink) -> None:
    source = make_source(domains_path, sink)
    snapshots = source.watch()
    await next_snapshot(snapshots)
    pending = asyncio.ensure_future(anext(snapshots))
    await source.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, TIMEOUT)


async def test_giving_up_on_a_watch_does_not_close_the_source(
    domains_path: Path, sink: MemorySink
) -> None:
    source = make_source(domains_path, sink)
    try:
        first_watch = source.watch()
        await next_snapshot(first_watch)
        with pytest.raises(TimeoutError):  # nothing changes, so nothing comes
            await asyncio.wait_for(anext(first_watch), 0.2)
        second_watch = source.watch()
        assert set((await next_snapshot(second_watch)).domains) == {"a.com", "b.com"}
        await rename_over(domains_path, "a.com\n# b.com\nz.com\n")
        assert set((await next_snapshot(second_watch)).domains) == {"a.com", "z.com"}
    finally:
        await source.aclose()


async def test_a_real_file_with_bom_crlf_and_a_latin1_line(
    tmp_path: Path, sink: MemorySink
) -> None:
    path = tmp_path / "domains.txt"
    await asyncio.to_thread(path.write_bytes, b"\xef\xbb\xbfa.com\r\nb\xfccher.de\r\nc.com\r\n")
    snapshot = await make_source(path, sink).read()
    assert set(snapshot.domains) == {"a.com", "c.com"}
    assert snapshot.domains["c.com"].place == f"{path}:3"
    assert [(p.place, p.message) for p in snapshot.problems] == [
        (f"{path}:2", "not valid UTF-8 (byte 0xfc)")
    ]


async def test_aclose_while_settling_ends_the_watch_without_the_half_written_state(
    domains_path: Path,
    sink: MemorySink,
    watched: tuple[DomainsFileSource, AsyncIterator[SourceSnapshot]],
) -> None:
    source, snapshots = watched
    pending = asyncio.ensure_future(anext(snapshots))
    await write(domains_path, "")
    await wait_settling(sink, "lost all its domains")
    await source.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, TIMEOUT)


async def test_a_deleted_file_keeps_its_domains_once_the_hold_is_over(
    domains_path: Path, sink: MemorySink
) -> None:
    source = make_source(domains_path, sink, hold_ms=SETTLE_MS * 2)
    snapshots = source.watch()
    try:
        assert set((await next_snapshot(snapshots)).domains) == {"a.com", "b.com"}
        await asyncio.to_thread(domains_path.unlink)
        seen = await snapshots_until(snapshots, lambda s: s.facts["present"] is False)
        gone = seen[-1]
        assert not gone.healthy  # "no file": nothing may be removed because of it
        assert set(gone.domains) == {"a.com", "b.com"}
        assert all({"a.com", "b.com"} <= set(s.domains) for s in seen)
    finally:
        await source.aclose()
