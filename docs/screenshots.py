"""Regenerate the TUI screenshots in docs/ (`make screenshots`).

They are taken of the real thing: the demo's sandbox and network, the real daemon as a
subprocess, and the TUI connected to its socket, each screen once the demo's story has
been told (domains done, one failing DNS, one refused).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from closte_sync.daemon.commands.demo import sandbox_env, start_daemon, stop_daemon
from closte_sync.sandbox.demo_network import LIVE, lay_out_demo
from closte_sync.sandbox.runner import Sandbox
from closte_sync.tui.app import ClosteSyncApp

HERE = Path(__file__).parent
SIZE = (150, 42)
SCREENS = ("domains", "logs", "trouble", "settings")


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cs-shots-") as folder:
        base = Path(folder)
        async with Sandbox.running(cert_delay_s=0) as sandbox:
            demo = lay_out_demo(sandbox, base)
            env = sandbox_env(sandbox, base, demo)
            daemon = await start_daemon(env, asyncio.subprocess.PIPE)
            assert daemon.stderr is not None
            try:
                done: set[str] = set()
                async with asyncio.timeout(90):
                    while done != set(LIVE):
                        line = (await daemon.stderr.readline()).decode()
                        if not line:
                            print(f"the daemon stopped early (exit {daemon.returncode})")
                            return 1
                        done |= {n for n in LIVE if f"domain-{n}:" in line and "done" in line}
                app = ClosteSyncApp(Path(env["CLOSTE_SYNC_SOCKET_PATH"]), blink=False)
                async with app.run_test(size=SIZE) as pilot:
                    await asyncio.wait_for(app.ready.wait(), 15)
                    for index, screen in enumerate(SCREENS, start=1):
                        await pilot.press(str(index))
                        await pilot.pause(0.5)  # let the screen draw its first page
                        path = app.save_screenshot(f"tui-{screen}.svg", str(HERE))
                        print(f"wrote {path}")
            finally:
                await stop_daemon(daemon)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
