"""`closte-sync install-service [--user]`: install the systemd unit, user, config and folders.

The unit texts below are the one source of truth: `systemd/` in the source tree holds them
rendered for ``/usr/local/bin/closte-sync`` (tests/test_systemd_units.py keeps the two
equal), and an install renders them for the `closte-sync` command that runs it. What
depends on the host (the WordPress root, the SQLite folder the daemon may write, the group
that may read wp-config.php) goes into a drop-in, so the unit itself stays as shipped.

Idempotent: a second run writes the same bytes and modes, and an existing config file is
never overwritten. ``--root DIR`` prefixes every path and then nothing outside DIR is
touched (no systemd-sysusers, no doctor, never systemctl). No secret is written anywhere:
the API key and the database password stay in wp-config.php.
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from closte_sync.daemon.config import ConfigError, load_config
from closte_sync.daemon.config.discovery import discover_root, wp_config_for_root

REFERENCE_COMMAND = Path("/usr/local/bin/closte-sync")
SERVICE = "closte-sync.service"
USER_NAME = "closte-sync"

SYSTEM_UNIT = """\
# closte-sync as a system service. Installed by `closte-sync install-service`, which also
# writes closte-sync.service.d/wordpress.conf with what depends on this host.
[Unit]
Description=closte-sync: keep a WordPress multisite's mapped domains live on Closte
Wants=network-online.target
After=network-online.target mariadb.service mysql.service
StartLimitIntervalSec=300
StartLimitBurst=5

[Service]
Type=notify
NotifyAccess=main
ExecStart={command} daemon
ExecReload=/bin/kill -HUP $MAINPID
# The daemon pings at half this period.
WatchdogSec=60
Restart=on-failure
RestartSec=5
# The daemon stops within 5 s of SIGTERM.
TimeoutStopSec=10
User=closte-sync
Group=closte-sync
# /var/lib/closte-sync: the store. /run/closte-sync: the control socket, kept across
# restarts so a TUI reconnects. /etc/closte-sync: config.toml (read-only here).
StateDirectory=closte-sync
StateDirectoryMode=0750
RuntimeDirectory=closte-sync
RuntimeDirectoryMode=0750
RuntimeDirectoryPreserve=restart
ConfigurationDirectory=closte-sync
ConfigurationDirectoryMode=0755
UMask=0077

# Everything outside the folders above is read-only (the WordPress root included);
# the drop-in grants the SQLite database folder when the daemon writes stages back.
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateMounts=yes
# PrivateUsers= is left off: it would drop the supplementary group the drop-in may add
# to read wp-config.php.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
KeyringMode=private
DevicePolicy=closed
# Unix: the control socket, MySQL's socket, journald. INET: MySQL, Closte, DNS, TLS checks.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
"""

USER_UNIT = """\
# closte-sync as a user service (`systemctl --user`), for hosts that give no root.
# Installed by `closte-sync install-service --user`. The store and socket paths are in
# the config file, so `closte-sync --config ... tui` finds the same socket.
[Unit]
Description=closte-sync (user service): keep a WordPress multisite's mapped domains live on Closte
StartLimitIntervalSec=300
StartLimitBurst=5

[Service]
Type=notify
NotifyAccess=main
ExecStart={command} --config %E/closte-sync/config.toml daemon
ExecReload=/bin/kill -HUP $MAINPID
WatchdogSec=60
Restart=on-failure
RestartSec=5
TimeoutStopSec=10
# $XDG_RUNTIME_DIR/closte-sync: the control socket, kept across restarts.
RuntimeDirectory=closte-sync
RuntimeDirectoryMode=0700
RuntimeDirectoryPreserve=restart
ConfigurationDirectory=closte-sync
UMask=0077
# A user manager cannot set up mount namespaces without user namespaces, which many
# hosts disable; these settings need neither.
NoNewPrivileges=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM
SystemCallArchitectures=native

[Install]
WantedBy=default.target
"""

SYSUSERS = """\
# The user closte-sync runs as (systemd-sysusers creates it): no login, no home of its own.
u closte-sync - "closte-sync daemon" /var/lib/closte-sync -
"""

_HOME_TREES = (Path("/home"), Path("/root"), Path("/run/user"))


def render_system_unit(command: Path = REFERENCE_COMMAND) -> str:
    return SYSTEM_UNIT.format(command=command)


def render_user_unit(command: Path = REFERENCE_COMMAND) -> str:
    return USER_UNIT.format(command=command)


@dataclass(frozen=True)
class PlannedDir:
    path: Path  # as on the target system, without --root
    mode: int


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    text: str
    mode: int
    keep_existing: bool = False  # the config file: written once, never overwritten


@dataclass(frozen=True)
class InstallPlan:
    dirs: tuple[PlannedDir, ...]
    files: tuple[PlannedFile, ...]
    config_path: Path
    sysusers_path: Path | None
    next_step: str


@dataclass(frozen=True)
class HostFacts:
    """What the drop-in depends on; gathered once, so a plan is a pure function of it."""

    command: Path
    wordpress_root: Path | None
    sqlite_folder: Path | None  # granted read-write when the daemon writes back
    wp_config_group: str | None  # added when wp-config.php is not world-readable


def config_skeleton(
    wordpress_root: Path | None, store_path: Path, socket_path: Path, domains_path: Path
) -> str:
    if wordpress_root is None:
        root_line = '# wordpress_root = "/var/www/html"   # the folder that holds wp-config.php'
    else:
        root_line = f"wordpress_root = {_toml_string(str(wordpress_root))}"
    return f"""\
# closte-sync configuration; every key is in README.md ("Configuration").
# The Closte API key and the database come from wp-config.php under wordpress_root:
# keep secrets there, not here.
{root_line}

[store]
path = {_toml_string(str(store_path))}

[socket]
path = {_toml_string(str(socket_path))}
# group = "closte-sync"    # members may read: closte-sync status, domains, tui
# admin_group = "sudo"     # members may change: retry, set, release

# [domains_file]
# path = {_toml_string(str(domains_path))}
"""


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes).
    return json.dumps(value, ensure_ascii=False)


def system_dropin(facts: HostFacts) -> str:
    lines = [
        "# Written by `closte-sync install-service` for this host; run it again after",
        "# moving WordPress. The unit beside this folder stays as shipped.",
        "[Service]",
    ]
    paths = [facts.command, facts.wordpress_root, facts.sqlite_folder]
    if any(_under_home(p) for p in paths if p is not None):
        lines += ["# The command or WordPress lives under a home folder.", "ProtectHome=read-only"]
    if facts.wordpress_root is not None:
        lines += ["ReadOnlyPaths=" + _unit_path(facts.wordpress_root)]
    if facts.sqlite_folder is not None:
        lines += [
            "# write_back/create_site_records: the SQLite database and its journal files.",
            "ReadWritePaths=" + _unit_path(facts.sqlite_folder),
        ]
    if facts.wp_config_group is not None:
        lines += [
            "# wp-config.php is readable by this group only.",
            "SupplementaryGroups=" + facts.wp_config_group,
        ]
    return "\n".join(lines) + "\n"


def _under_home(path: Path) -> bool:
    return any(path.is_relative_to(tree) for tree in _HOME_TREES)


def _unit_path(path: Path) -> str:
    # '-': a path gone missing (WordPress moved) does not stop the daemon from starting, so
    # it can say what is wrong. Paths with spaces are quoted; specifiers start with '%'.
    text = "-" + str(path).replace("%", "%%")
    return f'"{text}"' if " " in text else text


def plan_system(facts: HostFacts) -> InstallPlan:
    unit_dir = Path("/etc/systemd/system")
    config_dir = Path("/etc/closte-sync")
    state_dir = Path("/var/lib/closte-sync")
    config = config_dir / "config.toml"
    sysusers = Path("/etc/sysusers.d/closte-sync.conf")
    skeleton = config_skeleton(
        facts.wordpress_root,
        state_dir / "state.sqlite3",
        Path("/run/closte-sync/control.sock"),
        config_dir / "domains.txt",
    )
    return InstallPlan(
        dirs=(
            PlannedDir(unit_dir, 0o755),
            PlannedDir(unit_dir / f"{SERVICE}.d", 0o755),
            PlannedDir(sysusers.parent, 0o755),
            PlannedDir(config_dir, 0o755),
            # systemd hands it to the closte-sync user at start (StateDirectory=).
            PlannedDir(state_dir, 0o750),
        ),
        files=(
            PlannedFile(unit_dir / SERVICE, render_system_unit(facts.command), 0o644),
            PlannedFile(unit_dir / f"{SERVICE}.d" / "wordpress.conf", system_dropin(facts), 0o644),
            PlannedFile(sysusers, SYSUSERS, 0o644),
            PlannedFile(config, skeleton, 0o644, keep_existing=True),
        ),
        config_path=config,
        sysusers_path=sysusers,
        next_step="systemctl daemon-reload && systemctl enable --now closte-sync",
    )


@dataclass(frozen=True)
class UserDirs:
    config_home: Path  # $XDG_CONFIG_HOME or ~/.config
    state_home: Path  # $XDG_STATE_HOME or ~/.local/state
    runtime_dir: Path  # $XDG_RUNTIME_DIR or /run/user/UID

    @classmethod
    def from_env(cls, env: Mapping[str, str], home: Path, uid: int) -> UserDirs:
        def xdg(name: str, default: Path) -> Path:
            value = env.get(name, "")
            return Path(value) if value.startswith("/") else default

        return cls(
            config_home=xdg("XDG_CONFIG_HOME", home / ".config"),
            state_home=xdg("XDG_STATE_HOME", home / ".local" / "state"),
            runtime_dir=xdg("XDG_RUNTIME_DIR", Path(f"/run/user/{uid}")),
        )


def plan_user(facts: HostFacts, dirs: UserDirs) -> InstallPlan:
    unit_dir = dirs.config_home / "systemd" / "user"
    config_dir = dirs.config_home / "closte-sync"
    state_dir = dirs.state_home / "closte-sync"
    config = config_dir / "config.toml"
    skeleton = config_skeleton(
        facts.wordpress_root,
        state_dir / "state.sqlite3",
        dirs.runtime_dir / "closte-sync" / "control.sock",
        config_dir / "domains.txt",
    )
    return InstallPlan(
        dirs=(
            PlannedDir(unit_dir, 0o755),
            PlannedDir(config_dir, 0o700),
            PlannedDir(state_dir, 0o700),
        ),
        files=(
            PlannedFile(unit_dir / SERVICE, render_user_unit(facts.command), 0o644),
            PlannedFile(config, skeleton, 0o600, keep_existing=True),
        ),
        config_path=config,
        sysusers_path=None,
        next_step=(
            "systemctl --user daemon-reload && systemctl --user enable --now closte-sync\n"
            "  (and `loginctl enable-linger` to keep it running after you log out;\n"
            f"  watch it with `closte-sync --config {config} tui`)"
        ),
    )


def _target(root: Path | None, path: Path) -> Path:
    return root / path.relative_to("/") if root is not None else path


def apply_plan(plan: InstallPlan, root: Path | None, dry_run: bool, out: TextIO) -> None:
    """Create the folders and write the files (under ``root`` when given), saying what
    happened to each; with ``dry_run`` only say what would happen."""
    for folder in plan.dirs:
        target = _target(root, folder.path)
        if dry_run:
            verb = "would keep" if target.is_dir() else "would create"
            print(f"{verb} {target}/ (mode {folder.mode:04o})", file=out)
            continue
        existed = target.is_dir()
        target.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(target, folder.mode)  # mkdir's mode is cut by the umask; this is not
        print(f"{'kept' if existed else 'created'} {target}/ (mode {folder.mode:04o})", file=out)
    for planned in plan.files:
        target = _target(root, planned.path)
        exists = target.exists()
        if dry_run:
            if planned.keep_existing and exists:
                print(f"would keep {target} (exists; never overwritten)", file=out)
                continue
            print(f"would write {target} (mode {planned.mode:04o}):", file=out)
            for line in planned.text.splitlines():
                print(f"    {line}", file=out)
            continue
        if planned.keep_existing and exists:
            print(f"kept {target} (exists; never overwritten)", file=out)
            continue
        same = exists and target.read_text(encoding="utf-8") == planned.text
        if not same:
            _write_atomically(target, planned.text, planned.mode)
        os.chmod(target, planned.mode)
        print(f"{'unchanged' if same else 'wrote'} {target} (mode {planned.mode:04o})", file=out)


def _write_atomically(target: Path, text: str, mode: int) -> None:
    # A crash mid-write leaves the old file or the new one, never half of either.
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def command_path() -> Path:
    """The `closte-sync` command this run came from, for ExecStart=."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "closte-sync" and argv0.is_file():
        return argv0.absolute()
    found = shutil.which("closte-sync")
    if found:
        return Path(found).absolute()
    return Path(sys.executable).parent / "closte-sync"  # the venv's own script


def gather_facts(command: Path, cwd: Path, config_file: Path | None) -> tuple[HostFacts, str]:
    """The host facts, and a note for the admin when the config could not be read."""
    found = discover_root(cwd)
    wordpress_root = found[0] if found else None
    sqlite_folder: Path | None = None
    note = ""
    try:
        loaded = load_config(
            config_file if config_file is not None and config_file.is_file() else None,
            env={},
            cwd=cwd,
            default_config_path=Path("/nonexistent/closte-sync.toml"),
        )
    except ConfigError as exc:
        note = f"could not read the configuration, so no write access was granted: {exc}"
    else:
        settings = loaded.settings
        wordpress_root = settings.wordpress_root or wordpress_root
        connection = settings.database.connection
        writes = settings.database.write_back or settings.database.create_site_records
        if connection is not None and connection.sqlite_path is not None and writes:
            sqlite_folder = connection.sqlite_path.parent
    return (
        HostFacts(command, wordpress_root, sqlite_folder, _reading_group(wordpress_root)),
        note,
    )


def _reading_group(wordpress_root: Path | None) -> str | None:
    wp_config = wp_config_for_root(wordpress_root) if wordpress_root else None
    if wp_config is None:
        return None
    info = wp_config.stat()
    if info.st_mode & stat.S_IROTH:
        return None
    try:
        return grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        return str(info.st_gid)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--user", action="store_true", help="install a user service (systemctl --user), no root"
    )
    parser.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="prefix every path with DIR (an image or a test); no doctor, no sysusers",
    )
    parser.add_argument("--dry-run", action="store_true", help="show what would be written")
    parser.add_argument("--no-doctor", action="store_true", help="do not run doctor at the end")


def run(args: argparse.Namespace) -> int:
    root: Path | None = args.root.absolute() if args.root is not None else None
    cwd = Path.cwd()
    command = command_path()
    if args.user:
        dirs = UserDirs.from_env(os.environ, Path.home(), os.getuid())
        config_real = dirs.config_home / "closte-sync" / "config.toml"
    else:
        config_real = Path("/etc/closte-sync/config.toml")
    facts, note = gather_facts(command, cwd, _target(root, config_real))
    plan = plan_user(facts, dirs) if args.user else plan_system(facts)
    out = sys.stdout
    apply_plan(plan, root, args.dry_run, out)
    if note:
        print(f"note: {note}", file=out)
    if facts.wordpress_root is None:
        print(
            f"note: no wp-config.php in {cwd} or above: set wordpress_root in {config_real}",
            file=out,
        )
    if args.dry_run:
        print("dry run: nothing was written.", file=out)
        return 0
    if root is None and plan.sysusers_path is not None:
        _create_user(plan.sysusers_path, out)
    status = 0
    if root is None and not args.no_doctor:
        status = _doctor(config_real, out)
    print(f"\nnext: {plan.next_step}", file=out)
    out.flush()
    return status


def _create_user(sysusers_path: Path, out: TextIO) -> None:
    program = shutil.which("systemd-sysusers")
    if program is None:
        print(f"note: no systemd-sysusers here: create the user {USER_NAME} by hand", file=out)
        return
    subprocess.run([program, str(sysusers_path)], check=True)
    print(f"user {USER_NAME} is in place (systemd-sysusers)", file=out)


def _doctor(config_path: Path, out: TextIO) -> int:
    from closte_sync.daemon.commands import doctor

    print("\ncloste-sync doctor:", file=out)
    out.flush()
    return doctor.run(argparse.Namespace(config=config_path, json=False))
