"""Who is on the other end of the socket (SO_PEERCRED), and what they may do.

Root, the daemon's own user and members of ``admin_group`` may change things; members of
``group`` may only look; anyone else is refused with the reason.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import struct
from dataclasses import dataclass

from closte_sync.daemon.settings import SocketSettings
from closte_sync.shared.protocol import Role

_UCRED = struct.Struct("3i")  # pid, uid, gid


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int

    @property
    def user(self) -> str:
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return str(self.uid)

    @property
    def who(self) -> str:
        return f"{self.user} (uid {self.uid})"


@dataclass(frozen=True)
class Decision:
    role: Role | None  # None: refused
    reason: str  # why this role (or why refused); shown to the peer


def peer_of(sock: socket.socket) -> Peer:
    pid, uid, gid = _UCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    )
    return Peer(pid, uid, gid)


def group_id(name: str) -> int:
    """The id of a group given by name or number; KeyError names it when unknown."""
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise KeyError(f"[socket] group {name!r} does not exist on this machine") from None


def _groups_of(peer: Peer) -> set[int]:
    groups = {peer.gid}
    try:
        entry = pwd.getpwuid(peer.uid)
    except KeyError:
        return groups
    groups.add(entry.pw_gid)
    groups.update(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return groups


def decide(peer: Peer, settings: SocketSettings, daemon_uid: int) -> Decision:
    """The peer's role. Reads the group database: call it off the event loop."""
    if peer.uid == 0:
        return Decision(Role.ADMIN, "root")
    if peer.uid == daemon_uid:
        return Decision(Role.ADMIN, "the daemon's own user")
    groups = _groups_of(peer)
    admin_gid = _gid_or_none(settings.admin_group)
    if admin_gid is not None and admin_gid in groups:
        return Decision(Role.ADMIN, f"member of admin_group {settings.admin_group!r}")
    changes = "changes need root, the daemon's user" + (
        f" or admin_group {settings.admin_group!r}" if settings.admin_group else ""
    )
    read_gid = _gid_or_none(settings.group)
    if read_gid is not None and read_gid in groups:
        return Decision(Role.READER, f"member of group {settings.group!r}: read only; {changes}")
    allowed = [repr(g) for g in (settings.group, settings.admin_group) if g]
    return Decision(
        None,
        f"{peer.who} may not use the control socket: it is not root, not the daemon's user"
        + (f" and not in {' or '.join(allowed)}" if allowed else " and [socket] group is not set"),
    )


def _gid_or_none(name: str | None) -> int | None:
    if not name:
        return None
    try:
        return group_id(name)
    except KeyError:
        return None
