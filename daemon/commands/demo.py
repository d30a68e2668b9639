"""`closte-sync demo`: the whole product on the built-in sandbox, no Closte account needed.

It starts the sandbox (Closte's API, a TLS edge and DNS on loopback), lays out a small
WordPress multisite on SQLite with a handful of sites and mappings and a domains file, runs
the doctor, then starts the real daemon pointed at them and opens the TUI on its socket.
Within a minute (checks every 10 s) the domains move through checking-dns and
checking-ssl-cert to done; one fails DNS with its precise hint; one is refused by Closte
(another application holds it). Edit the domains file in another terminal and watch the
daemon follow. Quitting the TUI stops everything the demo started.

``--no-tui`` runs headless: the daemon's lines are printed, and the demo ends once the whole
story has been told (or with ``--watch``, at Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from closte_sync.daemon.doctor import DoctorContext, Status, run_checks
from closte_sync.sandbox.demo_network import LIVE, TAKEN, WRONG_DNS, DemoNetwork, lay_out_demo
from closte_sync.sandbox.runner import Sandbox
from closte_sync.shared.domains import display

CERT_DELAY_S = 15.0  # Closte takes 5-10 minutes; the demo scales that down
STORY_TIMEOUT_S = 120.0
PR_SET_PDEATHSIG = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-tui", action="store_true", help="run headless and print the story")
    parser.add_argument(
        "--watch", action="store_true", help="with --no-tui: keep going until Ctrl-C"
    )
    parser.add_argument(
        "--dir", type=Path, help="lay out the sample network here (default: a temp folder)"
    )


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_demo(args))


async def _demo(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        base = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cs-")))
        async with Sandbox.running(cert_delay_s=CERT_DELAY_S) as sandbox:
            _say("sandbox", f"Closte API {sandbox.api.url}, DNS {sandbox.dns_server.address}")
            demo = lay_out_demo(sandbox, base)
            _say("network", f"WordPress multisite (SQLite) laid out in {demo.network.root}")
            _say("network", f"domains file: {demo.domains_file} (edit it while the demo runs)")
            env = sandbox_env(sandbox, base, demo)
            if not await _doctor(demo, env):
                return 1
            if args.no_tui or not sys.stdout.isatty():  # no terminal to draw on: headless
                return await _headless(env, base, args.watch)
            return await _with_tui(env, base)
    return 0


def sandbox_env(sandbox: Sandbox, base: Path, demo: DemoNetwork) -> dict[str, str]:
    """Only what differs from a real Closte server; the rest comes from wp-config.php."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSTE_SYNC_")}
    env.update(
        {
            "CLOSTE_SYNC_WORDPRESS_ROOT": str(demo.network.root),
            "CLOSTE_SYNC_CLOSTE_BASE_URL": sandbox.api.url,
            "CLOSTE_SYNC_DOMAINS_FILE_PATH": str(demo.domains_file),
            "CLOSTE_SYNC_STORE_PATH": str(base / "state" / "closte-sync.sqlite3"),
            "CLOSTE_SYNC_SOCKET_PATH": str(base / "run" / "control.sock"),
            "CLOSTE_SYNC_CHECKS_NAMESERVERS": sandbox.dns_server.address,
            "CLOSTE_SYNC_CHECKS_TLS_PORT": str(sandbox.tls.port),
            "CLOSTE_SYNC_CHECKS_CA_BUNDLE": str(sandbox.ca_bundle),
            "CLOSTE_SYNC_CHECKS_NETWORK_IPS": sandbox.network_ip,
            "CLOSTE_SYNC_CHECKS_INTERVAL_S": "10",
        }
    )
    return env


async def _doctor(demo: DemoNetwork, env: Mapping[str, str]) -> bool:
    context = DoctorContext(
        config_path=None,
        env=dict(env),
        cwd=demo.network.root,
        default_config_path=demo.network.root / "no-config.toml",
    )
    results = await run_checks(context)
    for result in results:
        _say("doctor", f"{result.status.value.upper():4}  {result.name}: {result.detail}")
        if result.status is Status.FAIL:
            _say("doctor", f"      fix: {result.fix}")
    return all(r.status is Status.PASS for r in results)


def _die_with_parent() -> None:
    """In the child: SIGTERM when the demo dies, however it dies (Linux's PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def start_daemon(env: Mapping[str, str], stderr: int | object) -> asyncio.subprocess.Process:
    # Its own session: a closed terminal's SIGHUP (which the daemon takes as "reload") is
    # the demo's to handle, and the demo stops the daemon on its way out.
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "closte_sync.daemon.cli",
        "daemon",
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=stderr,  # type: ignore[arg-type]
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


async def stop_daemon(daemon: asyncio.subprocess.Process) -> int:
    if daemon.returncode is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):  # SIGTERM lets a pass finish its calls first
                return await daemon.wait()
        except TimeoutError:
            daemon.kill()
    return await daemon.wait()


async def _with_tui(env: Mapping[str, str], base: Path) -> int:
    from closte_sync.tui.app import ClosteSyncApp  # Textual loads only when it is used

    log = base / "daemon.log"
    with log.open("wb") as sink:
        daemon = await start_daemon(env, sink)
        app = ClosteSyncApp(Path(env["CLOSTE_SYNC_SOCKET_PATH"]))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            loop.add_signal_handler(sig, app.exit)  # a closed terminal ends the demo cleanly
        try:
            await app.run_async()
        finally:
            await stop_daemon(daemon)
    _say("demo", f"stopped; the daemon's log is in {log}")
    return 0


class _Story:
    """What the headless demo waits to see, from the daemon's own lines."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.wrong_dns_explained = False
        self.refused = False

    def read(self, line: str) -> None:
        for name in LIVE:
            if f"domain-{name}:" in line and "Marking domain as done" in line:
                self.live.add(name)
        if f"domain-{WRONG_DNS}:" in line and "What to do" in line:
            self.wrong_dns_explained = True
        if f"Closte refused to add {TAKEN}" in line:
            self.refused = True

    @property
    def told(self) -> bool:
        return self.live == set(LIVE) and self.wrong_dns_explained and self.refused


async def _headless(env: Mapping[str, str], base: Path, watch: bool) -> int:
    daemon = await start_daemon(env, asyncio.subprocess.PIPE)
    assert daemon.stderr is not None
    story = _Story()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def finish() -> None:  # the daemon stops, its stream ends, and so does the loop below
        stop.set()
        if daemon.returncode is None:
            daemon.send_signal(signal.SIGTERM)

    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        loop.add_signal_handler(sig, finish)
    try:
        async with asyncio.timeout(None if watch else STORY_TIMEOUT_S):
            while not stop.is_set() and (watch or not story.told):
                raw = await daemon.stderr.readline()
                if not raw:
                    break
                line = raw.decode(errors="replace").rstrip()
                print(f"{'daemon':>12} | {line}", flush=True)
                story.read(line)
    except TimeoutError:
        _say("demo", f"the story did not finish within {STORY_TIMEOUT_S:.0f} s")
    finally:
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        code = await stop_daemon(daemon)
    live = ", ".join(display(n) for n in sorted(story.live))
    _say("demo", f"live on Closte with a valid certificate: {live}")
    _say("demo", f"{display(WRONG_DNS)}: DNS points elsewhere, explained with its hint")
    _say("demo", f"{display(TAKEN)}: refused by Closte (another application holds it)")
    _say("demo", f"daemon stopped (exit {code}); its store is in {base / 'state'}")
    return 0 if (story.told or watch) and code == 0 else 1


def _say(topic: str, text: str) -> None:
    print(f"{topic:>12} | {text}", flush=True)
