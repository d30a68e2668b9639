"""The domains file: extra domains the operator wants on Closte, one per line.

Format::

    # whole-line comments and blank lines are ignored
    shop.example.com        # a trailing comment too
    *.example.org           # a wildcard alias
    bücher.de               # Unicode names are stored as punycode (xn--bcher-kva.de)

A UTF-8 byte order mark and CRLF line endings are fine. Each bad line is reported as a
``SourceProblem`` naming ``path:line`` and why; every good line still counts. A line that is
not valid UTF-8 is a problem for that line only (a warning only, when just its comment is
not). A name given twice (also after
normalisation: ``Example.com`` and ``example.com``, ``bücher.de`` and ``xn--bcher-kva.de``)
is a warning naming both lines; the first one counts.

A missing file means "no file", not "no domains": the snapshot says ``facts["present"] =
False`` and is not healthy (a warning, not an error), so the daemon neither adds nor removes
anything because of it; the domains last read from it are kept. A deleted file is far more
often an accident than an instruction: to remove every domain, empty the file. A file that
exists but cannot be read likewise gives an unhealthy snapshot keeping the last good domains.

When a read is trusted (the settling rule)
-----------------------------------------
Editors save in different ways (write a temp file and rename it over, truncate and write in
place, delete and recreate, append), and a slow writer can leave the file half-written for a
while. A read taken in the middle must never drop a domain, so a read is used only when:

1. it is stable: two reads ``settle_ms`` apart give the same bytes (or the same error); and
2. it does not look half-written next to the last read we used. It looks half-written when

   - it has no domains at all (file gone, empty, or only comments so far) while the last
     used read had some: delete-then-recreate and truncate-then-write pass through this;
   - its bytes are a proper prefix of the last used bytes: a writer that truncated the file
     and has not finished rewriting it;
   - its last line has no final newline: a writer stopped in the middle of a line.

   A read whose parsed result is the same as the last one is never held: nothing changes.
   Otherwise it is "settling": it is used only once it has stayed unchanged for ``hold_ms``.
   Any change meanwhile starts the wait again. So an operator who really empties the file,
   deletes its last lines, or saves without a final newline waits ``hold_ms`` for the change
   to count; additions and ordinary edits count after ``settle_ms``.

At start there is nothing to lose, so only rule 1 applies to the first read.

The file is watched with watchfiles on its parent folder, filtered to the file's name, so a
rename over it or a delete and recreate keeps being seen. ``watch`` yields a new snapshot only
when the parsed result (domains, their lines, problems, health) changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change, awatch

from closte_sync.daemon.events import Event, EventSink, Level, NullSink
from closte_sync.daemon.settings import DomainsFileSettings
from closte_sync.daemon.sources.base import DesiredDomain, SourceProblem, SourceSnapshot
from closte_sync.shared.domains import DomainError, display, normalize_domain

SOURCE_NAME = "domains-file"
EVENT_KIND = "domains-file"

# The settle time is most of an edit's latency (goal: p99 within 300 ms); 150 ms still
# outlasts the gap between an editor's truncate and its write, and the hold rule below
# covers slower writers.
DEFAULT_SETTLE_MS = 150
DEFAULT_HOLD_MS = 5000
# Watch events can be missed (network file systems, the folder itself replaced), so the file
# is also looked at this often when nothing was reported.
DEFAULT_RECHECK_MS = 30_000

_BOM = "\ufeff"
# Bytes that are not valid UTF-8 decode to these lone surrogates with "surrogateescape".
_ESCAPED_BYTES = range(0xDC80, 0xDD00)


def decode_domains_bytes(data: bytes) -> str:
    """The file's text; bytes that are not UTF-8 are kept (as surrogates) for the parser to
    report line by line instead of failing the whole file."""
    text = data.decode("utf-8", errors="surrogateescape")
    return text.removeprefix(_BOM)


def parse_domains_text(
    text: str, path: str
) -> tuple[dict[str, DesiredDomain], list[SourceProblem]]:
    """Parse the file's text: the good names by ASCII form, and one problem per bad line."""
    text = text.removeprefix(_BOM)
    domains: dict[str, DesiredDomain] = {}
    first_line: dict[str, int] = {}
    problems: list[SourceProblem] = []
    for number, line in enumerate(text.split("\n"), start=1):
        place = f"{path}:{number}"
        entry, _, comment = line.partition("#")
        entry = entry.strip()
        bad_byte = _first_undecodable_byte(entry)
        if bad_byte is not None:
            problems.append(SourceProblem(place, f"not valid UTF-8 (byte 0x{bad_byte:02x})"))
            continue
        bad_byte = _first_undecodable_byte(comment)
        if bad_byte is not None:
            # Only the comment is garbled (often Latin-1 text): the name itself still counts.
            problems.append(
                SourceProblem(
                    place,
                    f"the comment is not valid UTF-8 (byte 0x{bad_byte:02x})",
                    level=Level.WARNING,
                )
            )
        if not entry:
            continue
        if len(entry.split()) > 1:
            problems.append(
                SourceProblem(place, f"{entry!r}: more than one word; put one domain per line")
            )
            continue
        try:
            name = normalize_domain(entry)
        except DomainError as exc:
            problems.append(SourceProblem(place, f"{entry!r}: {exc.reason}"))
            continue
        if name in domains:
            problems.append(
                SourceProblem(
                    place,
                    f"{entry!r} is a duplicate of {path}:{first_line[name]} ({display(name)});"
                    " this line is ignored",
                    level=Level.WARNING,
                )
            )
            continue
        first_line[name] = number
        domains[name] = DesiredDomain(name=name, origin="file", place=place)
    return domains, problems


def _first_undecodable_byte(text: str) -> int | None:
    escaped = next((ch for ch in text if ord(ch) in _ESCAPED_BYTES), None)
    return None if escaped is None else ord(escaped) - 0xDC00


@dataclass(frozen=True)
class _FileState:
    """One look at the file: its bytes, or that it is missing, or why it cannot be read."""

    present: bool
    data: bytes = b""
    error: str | None = None


def _look_at(path: Path) -> _FileState:
    try:
        return _FileState(present=True, data=path.read_bytes())
    except FileNotFoundError:
        return _FileState(present=False)
    except OSError as exc:
        return _FileState(present=True, error=exc.strerror or type(exc).__name__)


def _folder_identity(folder: Path) -> tuple[int, int] | None:
    try:
        info = folder.stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def _same_result(a: SourceSnapshot, b: SourceSnapshot) -> bool:
    return (
        a.healthy == b.healthy
        and dict(a.domains) == dict(b.domains)
        and a.problems == b.problems
        and dict(a.facts) == dict(b.facts)
    )


class DomainsFileSource:
    """Desired domains from a plain text file (see the module docstring for the rules)."""

    name = SOURCE_NAME

    def __init__(
        self,
        path: Path,
        sink: EventSink | None = None,
        settle_ms: int = DEFAULT_SETTLE_MS,
        *,
        hold_ms: int = DEFAULT_HOLD_MS,
        recheck_ms: int = DEFAULT_RECHECK_MS,
    ) -> None:
        if settle_ms <= 0 or hold_ms < settle_ms or recheck_ms <= 0:
            raise ValueError("need 0 < settle_ms <= hold_ms and recheck_ms > 0")
        self.path = Path(path)
        self._sink: EventSink = sink if sink is not None else NullSink()
        self._settle_s = settle_ms / 1000
        self._hold_s = hold_ms / 1000
        self._recheck_ms = recheck_ms
        self._closed = asyncio.Event()
        # One stop event per running watcher: awatch sets its own when a waiter is cancelled,
        # and that must end only that watch, not close the whole source.
        self._watcher_stops: set[asyncio.Event] = set()
        self._used: _FileState | None = None  # the last read turned into a snapshot
        self._current: SourceSnapshot | None = None
        self._last_good: Mapping[str, DesiredDomain] = {}

    @classmethod
    def from_settings(
        cls, settings: DomainsFileSettings, sink: EventSink | None = None
    ) -> DomainsFileSource | None:
        """The source for ``[domains_file] path``, or None when no path is set."""
        return None if settings.path is None else cls(settings.path, sink)

    async def read(self) -> SourceSnapshot:
        state = await self._settled_state(stop_when_closed=False)
        assert state is not None  # only a closing watch gives up on a read
        return self._use(state)

    async def watch(self) -> AsyncIterator[SourceSnapshot]:
        changes = self._changes()
        # Start the watcher before the first read, so an edit made meanwhile is not missed.
        next_change = asyncio.ensure_future(anext(changes))
        try:
            last = await self.read()
            yield last
            while True:
                try:
                    await next_change
                except StopAsyncIteration:
                    return  # closed
                state = await self._settled_state(stop_when_closed=True)
                if state is None:
                    return  # closed while the file was settling: yield nothing half-written
                # Changes made while we read are buffered by the watcher, not lost.
                next_change = asyncio.ensure_future(anext(changes))
                snapshot = self._use(state)
                if not _same_result(snapshot, last):
                    last = snapshot
                    yield snapshot
        finally:
            next_change.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await next_change
            await changes.aclose()

    async def aclose(self) -> None:
        """Stop every watch; a pending ``anext`` on one ends with StopAsyncIteration."""
        self._closed.set()
        for stop in self._watcher_stops:
            stop.set()

    # -- reading ---------------------------------------------------------------------------

    async def _look(self) -> _FileState:
        return await asyncio.to_thread(_look_at, self.path)

    async def _settled_state(self, *, stop_when_closed: bool) -> _FileState | None:
        """Re-read until the file is stable and, if it looks half-written, held long enough.

        None when ``stop_when_closed`` and the source was closed before that.
        """
        loop = asyncio.get_running_loop()
        state = await self._look()
        unchanged_since = loop.time()
        announced: _FileState | None = None
        while True:
            if await self._wait_closed(self._settle_s) and stop_when_closed:
                return None
            again = await self._look()
            if again != state:
                state, unchanged_since = again, loop.time()
                continue
            reason = self._why_settling(state)
            if reason is None:
                return state
            waited = loop.time() - unchanged_since
            if waited >= self._hold_s:
                self._emit(
                    Level.INFO,
                    f"domains file {self.path} {reason} and stayed so for {waited:.1f} s;"
                    " using it as it is",
                    reason=reason,
                )
                return state
            if announced != state:
                announced = state
                self._emit(
                    Level.DEBUG,
                    f"domains file {self.path} {reason}; waiting for it to settle",
                    reason=reason,
                    settling=True,
                )

    def _why_settling(self, state: _FileState) -> str | None:
        """Why ``state`` looks like a write in progress, or None when it looks finished."""
        used, current = self._used, self._current
        if used is None or current is None or state.error is not None:
            return None
        domains, problems = self._parse(state)
        if current.healthy and domains == current.domains and tuple(problems) == current.problems:
            return None  # nothing would change, so nothing to wait for
        if current.domains and not domains:
            return "lost all its domains" if state.present else "has vanished"
        if used.present and len(state.data) < len(used.data) and used.data.startswith(state.data):
            return "lost its trailing part"
        if state.data and not state.data.endswith(b"\n"):
            return "ends in the middle of a line"
        return None

    def _parse(self, state: _FileState) -> tuple[dict[str, DesiredDomain], list[SourceProblem]]:
        if not state.present or state.error is not None:
            return {}, []
        return parse_domains_text(decode_domains_bytes(state.data), str(self.path))

    # -- snapshots and events --------------------------------------------------------------

    def _use(self, state: _FileState) -> SourceSnapshot:
        if not state.present:
            problem = SourceProblem(
                str(self.path),
                "no domains file here; nothing is added or removed because of it (the domains"
                " last read from it are kept; to remove them all, empty the file)",
                Level.WARNING,
            )
            snapshot = SourceSnapshot(
                source=SOURCE_NAME,
                domains=self._last_good,
                healthy=False,
                problems=(problem,),
                facts={"present": False, "path": str(self.path)},
            )
        elif state.error is not None:
            problem = SourceProblem(str(self.path), f"cannot read the domains file: {state.error}")
            snapshot = SourceSnapshot(
                source=SOURCE_NAME,
                domains=self._last_good,
                healthy=False,
                problems=(problem,),
                facts={"present": True, "readable": False, "path": str(self.path)},
            )
        else:
            domains, problems = self._parse(state)
            snapshot = SourceSnapshot(
                source=SOURCE_NAME,
                domains=domains,
                problems=tuple(problems),
                facts={"present": True, "readable": True, "path": str(self.path)},
            )
        previous = self._current
        self._used, self._current = state, snapshot
        if snapshot.healthy:
            self._last_good = snapshot.domains
        if previous is None or not _same_result(previous, snapshot):
            self._report(previous, snapshot)
        return snapshot

    def _report(self, previous: SourceSnapshot | None, snapshot: SourceSnapshot) -> None:
        if not snapshot.facts.get("present"):
            self._emit(
                Level.WARNING,
                f"no domains file at {self.path}; keeping the last"
                f" {len(snapshot.domains)} domain(s) read from it",
                present=False,
            )
            return
        if not snapshot.healthy:
            self._emit(
                Level.ERROR,
                f"cannot read the domains file {self.path}: {snapshot.problems[0].message};"
                f" keeping the last {len(snapshot.domains)} domain(s)",
            )
            return
        if previous is None:
            self._emit(
                Level.INFO,
                f"domains file {self.path}: {len(snapshot.domains)} domain(s)",
                count=len(snapshot.domains),
            )
        else:
            added = sorted(set(snapshot.domains) - set(previous.domains))
            removed = sorted(set(previous.domains) - set(snapshot.domains))
            if added or removed:
                parts = [f"+{display(name)}" for name in added]
                parts += [f"-{display(name)}" for name in removed]
                self._emit(
                    Level.INFO,
                    f"domains file {self.path} changed: {', '.join(parts)}",
                    added=added,
                    removed=removed,
                )
        known = set(previous.problems) if previous is not None else set()
        for problem in snapshot.problems:
            if problem not in known:
                self._emit(problem.level, str(problem), place=problem.place)

    def _emit(self, level: Level, message: str, **details: object) -> None:
        self._sink.emit(Event(level=level, kind=EVENT_KIND, message=message, details=details))

    # -- watching --------------------------------------------------------------------------

    async def _changes(self) -> AsyncGenerator[None, None]:
        """One item each time the file may have changed, until ``aclose``."""
        folder = self.path.parent
        name = self.path.name

        def is_our_file(_change: Change, changed: str) -> bool:
            return os.path.basename(changed) == name

        while not self._closed.is_set():
            identity = await asyncio.to_thread(_folder_identity, folder)
            if identity is None:
                # No folder to watch yet: look again later, the file may appear with it.
                if await self._wait_closed(self._recheck_ms / 1000):
                    return
                yield None
                continue
            stop = asyncio.Event()
            self._watcher_stops.add(stop)
            try:
                async for _ in awatch(
                    folder,
                    watch_filter=is_our_file,
                    stop_event=stop,
                    recursive=False,
                    step=20,
                    rust_timeout=self._recheck_ms,
                    yield_on_timeout=True,
                ):
                    yield None
                    if await asyncio.to_thread(_folder_identity, folder) != identity:
                        break  # the folder was replaced: watch the new one
            except FileNotFoundError:
                continue  # the folder vanished as the watch started
            finally:
                self._watcher_stops.discard(stop)

    async def _wait_closed(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._closed.wait(), timeout)
        except TimeoutError:
            return False
        return True
