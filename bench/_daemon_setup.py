"""What bench/daemon.py stands on: a sandbox in its own process already holding N aliases
that point at the network with valid certificates, and the environment that points
closte-sync at it. The real daemon runs as a subprocess through the tests' own harness
(``tests/daemon_harness.DaemonProcess``).

The sandbox runs apart from the code measured so that on a 2-core machine its DNS answers and
TLS handshakes do not share one event loop with the checks they answer. Its certificates are
issued before the clock starts: issuing is the sandbox's cost, not the daemon's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

from closte_sync.daemon.config import LoadedConfig, load_config
from closte_sync.sandbox.ca import CertKind
from closte_sync.sandbox.runner import Sandbox

SETUP = Path(__file__).resolve()


def domain_names(count: int, prefix: str = "site") -> list[str]:
    return [f"{prefix}{i:05d}.bench.example" for i in range(count)]


# -- the sandbox in a process of its own ---------------------------------------------------


async def serve(count: int) -> None:
    """The child's side: hold ``count`` aliases, point them at the network, issue their
    certificates, print the addresses, serve until stdin closes."""
    async with Sandbox.running(cert_delay_s=0) as sb:
        for name in domain_names(count):
            sb.dns.set_a(name, [sb.network_ip])
            sb.state.add_alias(sb.api_key, name, False)
            sb.ca.server_context(name, CertKind.VALID)
        print(json.dumps(sb.info()), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # returns when the parent goes away


@dataclass(frozen=True)
class SandboxInfo:
    api: str
    dns: str
    tls_port: int
    ca_bundle: str
    network_ip: str
    api_key: str
    pid: int


@contextlib.asynccontextmanager
async def sandbox_process(count: int) -> AsyncIterator[SandboxInfo]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SETUP),
        "--serve",
        str(count),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        async with asyncio.timeout(60 + count / 100):  # about 5 ms a certificate
            line = (await child.stdout.readline()).decode().strip()
        if not line:
            raise RuntimeError("the sandbox process ended before it was ready")
        yield SandboxInfo(**json.loads(line), pid=child.pid)
    finally:
        child.stdin.close()
        try:
            async with asyncio.timeout(30):
                await child.wait()
        except TimeoutError:
            child.kill()
            await child.wait()


# -- closte-sync's configuration -----------------------------------------------------------


def sandbox_env(
    api: str,
    api_key: str,
    dns: str,
    tls_port: int,
    ca_bundle: str,
    network_ip: str,
    base: Path,
    **extra: str,
) -> dict[str, str]:
    """Everything closte-sync needs to work against the sandbox, with defaults elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSTE_SYNC_")}
    env.update(
        {
            "CLOSTE_SYNC_CLOSTE_API_KEY": api_key,
            "CLOSTE_SYNC_CLOSTE_BASE_URL": api,
            "CLOSTE_SYNC_STORE_PATH": str(base / "state" / "closte-sync.sqlite3"),
            "CLOSTE_SYNC_SOCKET_PATH": str(base / "run" / "control.sock"),
            "CLOSTE_SYNC_CHECKS_NAMESERVERS": dns,
            "CLOSTE_SYNC_CHECKS_TLS_PORT": str(tls_port),
            "CLOSTE_SYNC_CHECKS_CA_BUNDLE": ca_bundle,
            "CLOSTE_SYNC_CHECKS_NETWORK_IPS": network_ip,
        }
    )
    env.update(extra)
    return env


def info_env(info: SandboxInfo, base: Path, **extra: str) -> dict[str, str]:
    return sandbox_env(
        info.api,
        info.api_key,
        info.dns,
        info.tls_port,
        info.ca_bundle,
        info.network_ip,
        base,
        **extra,
    )


def write_domains_file(base: Path, names: Iterable[str]) -> Path:
    path = base / "domains.txt"
    path.write_text("".join(f"{name}\n" for name in names))
    return path


def load(env: dict[str, str], base: Path) -> LoadedConfig:
    """The configuration as the daemon would read it; no config file, no wp-config.php."""
    return load_config(env=env, cwd=base, default_config_path=base / "no-config.toml")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go): connections are refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(VmHWM, VmRSS) of a live process, in MB, from /proc/PID/status."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) / 1024  # kB
    return values["VmHWM"], values["VmRSS"]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        asyncio.run(serve(int(sys.argv[2])))
