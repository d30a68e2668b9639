"""DatabaseSource: the desired domains as the multisite database holds them.

``read`` is one full read. ``watch`` yields the first snapshot at once, then polls a cheap
fingerprint (MySQL) or waits for file notifications (SQLite) and reads everything again only
when it changed, yielding a snapshot only when the result differs. When the database cannot
be reached it reconnects with capped exponential backoff and yields an unhealthy snapshot
that keeps the last good domains, so nothing downstream mistakes an outage for "no domains".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from closte_sync.daemon.events import EventSink, Level, NullSink, make_event
from closte_sync.daemon.settings import DatabaseSettings, WordPressFacts
from closte_sync.daemon.sources.base import DesiredDomain, SourceProblem, SourceSnapshot
from closte_sync.daemon.sources.database.backend import Backend, DatabaseUnavailable
from closte_sync.daemon.sources.database.build import Built, build
from closte_sync.daemon.sources.database.mysql import MySQLBackend
from closte_sync.daemon.sources.database.sqlite import SQLiteBackend
from closte_sync.daemon.sources.database.tables import STAGES, DatabaseConfigError, TableNames
from closte_sync.shared.domains import normalize_domain, to_unicode

EVENT_KIND = "database"


class DatabaseSource:
    name = "database"

    def __init__(
        self,
        settings: DatabaseSettings,
        wordpress: WordPressFacts | None = None,
        sink: EventSink | None = None,
        *,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 30.0,
        safety_poll_s: float = 5.0,
        new_sites_after: int | None = None,
    ) -> None:
        """``new_sites_after``: sites with a higher blog_id count as new (they get the
        plugin's record). None: the highest blog_id at the first read, so only sites made
        while the source watches count. The source moves the mark on as it handles new
        sites (``sites_mark``); a caller that must bridge restarts (the daemon's loop)
        keeps ``sites_mark`` in its store after each snapshot and passes it back here, so
        sites created while nothing ran get their record at the next start."""
        if settings.connection is None:
            raise DatabaseConfigError("database: no connection configured (database.url)")
        if settings.poll_s <= 0:
            raise DatabaseConfigError(f"database.poll_s {settings.poll_s!r}: must be above 0")
        self.settings = settings
        self.tables = TableNames.build(settings.base_prefix, settings.network_id)
        self._wordpress = wordpress or WordPressFacts()
        self._sink: EventSink = sink or NullSink()
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._backend = self._make_backend()
        self._period = safety_poll_s if self._backend.change_notifications else settings.poll_s
        # One connection, one user at a time: watch, read and write_stage share it.
        self._lock = asyncio.Lock()
        # Set after our own writes, which SQLite's data_version does not report.
        self._poked = asyncio.Event()
        self._closed = False
        self._last_good: SourceSnapshot | None = None
        self._reported: frozenset[SourceProblem] = frozenset()
        self._mark = new_sites_after
        # New sites above the mark already handled in this run (the mark waits for a lower
        # site): a record an admin deletes is not made again.
        self._handled_sites: set[int] = set()

    def _make_backend(self) -> Backend:
        connection = self.settings.connection
        assert connection is not None
        if connection.kind == "mysql":
            return MySQLBackend(connection, self.tables, self.settings.network_id)
        if connection.sqlite_path is None:
            raise DatabaseConfigError("database: sqlite connection without a file path")
        writable = self.settings.write_back or self.settings.create_site_records
        return SQLiteBackend(
            connection.sqlite_path,
            self.tables,
            self.settings.network_id,
            writable=writable,
        )

    @property
    def last_good(self) -> SourceSnapshot | None:
        return self._last_good

    @property
    def sites_mark(self) -> int | None:
        """The highest blog_id up to which every new site has been handled: its record
        exists or was made, or it needs none (not live, another network's, the network's
        own domain). A site still without its record (the insert was refused, or
        create_site_records is off) holds the mark below it, so a later start looks at it
        again. None until the first read when the source was started without a mark."""
        return self._mark

    # -- Source protocol ------------------------------------------------------------------

    async def read(self) -> SourceSnapshot:
        try:
            async with self._lock:
                return await self._read_locked()
        except DatabaseUnavailable as exc:
            return self._unhealthy(exc)

    async def watch(self) -> AsyncIterator[SourceSnapshot]:
        last_fingerprint: object = None
        last_yielded: SourceSnapshot | None = None
        failures = 0
        read_cost = 0.0  # how long the last look that found a change took, end to end
        loop = asyncio.get_running_loop()
        while not self._closed:
            # poll_s bounds the time from a commit to its snapshot: the next look starts
            # early by what a look with a full read took last time, so a change committed
            # just after this look is out by poll_s. A backend that is told about changes
            # (SQLite's file watch) only needs the slow safety poll.
            started = loop.time()
            next_poll = started + self._period - min(read_cost, self._period / 2)
            try:
                async with self._lock:
                    if self._closed:
                        return  # aclose() ran while we waited for the lock: do not reconnect
                    fingerprint = await self._backend.fingerprint()
                    snapshot = None
                    if fingerprint != last_fingerprint or self._poked.is_set():
                        self._poked.clear()
                        snapshot = await self._read_locked()
                        # The fingerprint taken before the read: a change during the read
                        # shows up as a new fingerprint on the next poll.
                        last_fingerprint = fingerprint
                        read_cost = loop.time() - started
                if failures:
                    self._emit(Level.INFO, f"reconnected to {self._backend.description}")
                    failures = 0
            except DatabaseUnavailable as exc:
                failures += 1
                last_fingerprint = None
                if failures == 1:
                    self._emit(Level.ERROR, f"database unreachable, reconnecting: {exc}")
                # The first failure is retried at once (a dropped connection usually comes
                # straight back); only a second one makes the snapshot unhealthy.
                if failures >= 2:
                    unhealthy = self._unhealthy(exc)
                    if not _same(unhealthy, last_yielded):
                        last_yielded = unhealthy
                        yield unhealthy
                await self._pause(self._backoff(failures))
                continue
            if snapshot is not None and not _same(snapshot, last_yielded):
                last_yielded = snapshot
                yield snapshot
            await self._pause(next_poll - loop.time())

    async def aclose(self) -> None:
        self._closed = True
        self._poked.set()  # wakes a pausing watch() so it can end
        async with self._lock:
            await self._backend.close()

    # -- write-back -----------------------------------------------------------------------

    async def write_access_problem(self, *, insert: bool, update: bool) -> str | None:
        """Why the daemon could not insert site records (``insert``) or write stages back
        (``update``), or None when it can."""
        try:
            async with self._lock:
                await self._backend.check_write_access(insert=insert, update=update)
        except DatabaseUnavailable as exc:
            return exc.reason
        return None

    async def write_stage(
        self,
        domain: str,
        stage: str,
        secure: bool,
        *,
        mapping_ids: Sequence[int] | None = None,
    ) -> int:
        """Record a domain's stage (and secure flag) in its mapping rows, as the plugin would.

        One UPDATE: by primary key when ``mapping_ids`` is given (DesiredDomain.mapping_id;
        a row whose domain was edited since is left alone), otherwise by the indexed domain
        column, on the ASCII spelling and, for an IDN, the Unicode one (the plugin stores the
        name as typed). Changes only ``stage``, ``secure`` and ``date_modified``, and only on
        rows that differ. Returns how many rows this call changed: 0 when they already
        carried this stage, when no row maps the domain, or when write-back is off. Raises
        ValueError for a stage the plugin does not know or a bad row id,
        DatabaseUnavailable when the database cannot be written.
        """
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r}: not one of {', '.join(STAGES)}")
        name = normalize_domain(domain)
        ids = _row_ids(mapping_ids)
        if not self.settings.write_back or ids == ():
            return 0
        spellings = tuple(dict.fromkeys((name, to_unicode(name))))
        async with self._lock:
            changed = await self._backend.update_stage(stage, secure, spellings=spellings, ids=ids)
            if changed:
                self._poked.set()  # our own write is not seen by SQLite's data_version
        if changed:
            self._emit(Level.INFO, f"stage of {name} set to {stage}", domain=name, stage=stage)
        return changed

    # -- internals ------------------------------------------------------------------------

    async def _read_locked(self) -> SourceSnapshot:
        read = await self._backend.read_all(self._mark)
        mark = read.max_blog_id if self._mark is None else self._mark
        built = build(
            read,
            self.tables,
            network_id=self.settings.network_id,
            active_only=self.settings.active_only,
            domain_current_site=self._wordpress.domain_current_site,
            handled_sites=frozenset(self._handled_sites),
        )
        self._handled_sites |= built.handled_sites
        if self.settings.create_site_records and built.missing_records:
            await self._create_site_records(built)
        waiting = [d.blog_id for d in built.missing_records if d.blog_id not in self._handled_sites]
        self._advance_mark(mark, read.max_blog_id, waiting)
        snapshot = SourceSnapshot(
            source=self.name,
            domains=built.domains,
            healthy=True,
            problems=tuple(built.problems),
            facts=built.facts,
        )
        self._report_problems(snapshot.problems)
        self._last_good = snapshot
        return snapshot

    def _advance_mark(self, mark: int, max_blog_id: int, waiting: list[int | None]) -> None:
        # Every site between the mark and the highest blog_id of this read was handled,
        # except the ones still waiting for their record: the mark stops just below the
        # lowest of those. Sites that appeared after the highest blog_id was read are
        # looked at again next time. It never moves back.
        lowest_waiting = min((b for b in waiting if b is not None), default=None)
        top = max_blog_id if lowest_waiting is None else min(max_blog_id, lowest_waiting - 1)
        self._mark = max(mark, top)
        self._handled_sites = {b for b in self._handled_sites if b > self._mark}

    async def _create_site_records(self, built: Built) -> None:
        created = False
        for desired in built.missing_records:
            assert desired.blog_id is not None
            try:
                new_id = await self._backend.insert_site_record(desired.blog_id, desired.name)
            except DatabaseUnavailable as exc:
                # The read itself worked: keep it (the site is still desired), and say what
                # the database refused so the admin can grant INSERT or turn the setting off.
                built.problems.append(
                    SourceProblem(
                        f"{self.tables.mappings}",
                        f"could not create the record for new site {desired.place}"
                        f" ({desired.name}): {exc.reason}; grant INSERT on the table or set"
                        " [database] create_site_records = false",
                    )
                )
                continue
            self._handled_sites.add(desired.blog_id)
            if new_id is None:
                continue  # someone else (the plugin, another daemon) got there first
            created = True
            if built.domains[desired.name].origin == "site":  # a mapping row says more
                built.domains[desired.name] = _with_mapping_id(
                    desired, new_id, self.tables.mappings
                )
            self._emit(
                Level.INFO,
                f"created the domain record for new site {desired.place}: {desired.name}",
                domain=desired.name,
                blog_id=desired.blog_id,
                mapping_id=new_id,
            )
        if created:
            self._poked.set()  # our insert is not seen by SQLite's data_version

    def _unhealthy(self, why: DatabaseUnavailable) -> SourceSnapshot:
        last = self._last_good
        return SourceSnapshot(
            source=self.name,
            domains=dict(last.domains) if last else {},
            healthy=False,
            problems=(SourceProblem(why.where, why.reason),),
            facts=dict(last.facts) if last else {},
        )

    def _report_problems(self, problems: tuple[SourceProblem, ...]) -> None:
        # Each problem is reported once when it appears, not on every read.
        current = frozenset(problems)
        for problem in problems:
            if problem not in self._reported:
                self._emit(problem.level, str(problem), place=problem.place)
        self._reported = current

    def _backoff(self, failures: int) -> float:
        if failures <= 1:
            return 0.0
        return float(min(self._backoff_max_s, self._backoff_base_s * 2 ** (failures - 2)))

    async def _pause(self, seconds: float) -> None:
        """Wait for a change (or a poke from our own write), at most ``seconds``."""
        if seconds <= 0:
            return
        poke = asyncio.ensure_future(self._poked.wait())
        change = asyncio.ensure_future(self._backend.wait_for_change(seconds))
        try:
            await asyncio.wait({poke, change}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (poke, change):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _emit(
        self, level: Level, message: str, *, domain: str | None = None, **details: object
    ) -> None:
        self._sink.emit(make_event(level, EVENT_KIND, message, domain=domain, **details))


def _row_ids(ids: Sequence[int] | None) -> tuple[int, ...] | None:
    if ids is None:
        return None
    checked = tuple(ids)
    for row_id in checked:
        if isinstance(row_id, bool) or not isinstance(row_id, int) or row_id < 1:
            raise ValueError(f"mapping id {row_id!r}: not a row id (a whole number from 1)")
    return checked


def _with_mapping_id(desired: DesiredDomain, mapping_id: int, table: str) -> DesiredDomain:
    return DesiredDomain(
        name=desired.name,
        origin=desired.origin,
        active=desired.active,
        blog_id=desired.blog_id,
        mapping_id=mapping_id,
        stage=desired.stage,
        primary=desired.primary,
        place=f"{table}#{mapping_id}",
    )


def _same(a: SourceSnapshot, b: SourceSnapshot | None) -> bool:
    return (
        b is not None
        and a.healthy == b.healthy
        and dict(a.domains) == dict(b.domains)
        and a.problems == b.problems
        and dict(a.facts) == dict(b.facts)
    )
