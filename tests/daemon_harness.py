"""A WordPress network on SQLite, a domains file and the environment that points closte-sync
at a running sandbox: what the end-to-end tests run the real daemon and `once` against."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from closte_sync.sandbox.runner import Sandbox
from closte_sync.sandbox.wordpress import SampleNetwork, build_network


@dataclass
class Site:
    sandbox: Sandbox
    base: Path
    network: SampleNetwork
    domains_file: Path
    store_path: Path

    def env(self, **extra: str) -> dict[str, str]:
        sb = self.sandbox
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSTE_SYNC_")}
        env.update(
            {
                "CLOSTE_SYNC_WORDPRESS_ROOT": str(self.network.root),
                "CLOSTE_SYNC_CLOSTE_BASE_URL": sb.api.url,
                "CLOSTE_SYNC_CLOSTE_RATE_PER_SECOND": "200",
                "CLOSTE_SYNC_DOMAINS_FILE_PATH": str(self.domains_file),
                "CLOSTE_SYNC_STORE_PATH": str(self.store_path),
                "CLOSTE_SYNC_SOCKET_PATH": str(self.base / "run" / "control.sock"),
                "CLOSTE_SYNC_CHECKS_NAMESERVERS": sb.dns_server.address,
                "CLOSTE_SYNC_CHECKS_TLS_PORT": str(sb.tls.port),
                "CLOSTE_SYNC_CHECKS_CA_BUNDLE": str(sb.ca_bundle),
                "CLOSTE_SYNC_CHECKS_NETWORK_IPS": sb.network_ip,
                "CLOSTE_SYNC_CHECKS_INTERVAL_S": "10",
                "CLOSTE_SYNC_GUARD_MIN_HELD": "100",
            }
        )
        env.update(extra)
        # An empty value unsets the variable (so a config file can speak for that key).
        return {key: value for key, value in env.items() if value != ""}

    def held(self) -> set[str]:
        return set(self.sandbox.state.held(self.sandbox.api_key))

    def point_at_network(self, *names: str) -> None:
        for name in names:
            self.sandbox.dns.set_a(name, [self.sandbox.network_ip])

    def insert_mapping(self, domain: str, blog_id: int = 1) -> None:
        with self.network.connect() as db:
            db.execute(
                f"INSERT INTO {self.network.prefix}wu_domain_mappings (blog_id, domain, active,"
                " primary_domain, secure, stage, date_created, date_modified) VALUES"
                " (?, ?, 1, 0, 0, 'checking-dns', datetime('now'), datetime('now'))",
                (blog_id, domain),
            )

    def delete_mapping(self, domain: str) -> None:
        with self.network.connect() as db:
            db.execute(
                f"DELETE FROM {self.network.prefix}wu_domain_mappings WHERE domain = ?", (domain,)
            )

    def mapping_stage(self, domain: str) -> tuple[str, int] | None:
        with self.network.connect() as db:
            row = db.execute(
                f"SELECT stage, secure FROM {self.network.prefix}wu_domain_mappings"
                " WHERE domain = ?",
                (domain,),
            ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))


def lay_out(
    sandbox: Sandbox,
    base: Path,
    *,
    sites: Sequence[str] = (),
    mappings: Sequence[tuple[str, int]] = (),
    file_lines: Sequence[str] = (),
    site_records: bool = True,
) -> Site:
    network = build_network(
        base / "wordpress",
        api_key=sandbox.api_key,
        main_domain=sandbox.network_host,
        sites=sites,
        mappings=mappings,
        site_records=site_records,
    )
    domains_file = base / "domains.txt"
    domains_file.write_text("".join(f"{line}\n" for line in file_lines))
    return Site(sandbox, base, network, domains_file, base / "state" / "closte-sync.sqlite3")


async def run_cli(site: Site, *args: str, timeout: float = 60, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "closte_sync.daemon.cli",
        *args,
        env=site.env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class DaemonProcess:
    """`closte-sync daemon` as a subprocess; its stderr lines are read as they come, so a
    test waits for the line that says a thing happened instead of sleeping. The benches
    run it too, and time lines by when they arrived (``arrived``)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.arrived: list[float] = []  # time.monotonic() when each line was read
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, site: Site, *args: str, config: Path | None = None, **env: str
    ) -> DaemonProcess:
        global_args = ["--config", str(config)] if config is not None else []
        return await cls.launch(site.env(**env), *global_args, "daemon", *args)

    @classmethod
    async def launch(
        cls, env: dict[str, str], *args: str, cwd: Path | None = None
    ) -> DaemonProcess:
        """``closte-sync ARGS`` in the environment ``env`` exactly."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "closte_sync.daemon.cli",
            *args,
            env=env,
            cwd=cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        return cls(process)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self.arrived.append(time.monotonic())
            self._new.set()
        self._new.set()

    async def wait_for(self, *parts: str, timeout: float = 30.0, start: int = 0) -> int:
        """The index of the first line (from ``start``) holding every one of ``parts``."""
        seen = start
        async with asyncio.timeout(timeout):
            while True:
                for index in range(seen, len(self.lines)):
                    if all(p in self.lines[index] for p in parts):
                        return index
                seen = len(self.lines)
                if self._reader.done():
                    raise AssertionError(f"the daemon exited; waiting for {parts}:\n{self.text}")
                self._new.clear()
                await self._new.wait()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    async def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, and the exit code; a daemon still running after ``timeout`` is killed
        and TimeoutError raised."""
        if self.process.returncode is None:
            self.process.terminate()
        try:
            async with asyncio.timeout(timeout):
                code = await self.process.wait()
                await self._reader
        except TimeoutError:
            await self.kill()
            raise
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        await self._reader
