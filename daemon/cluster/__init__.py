"""Several web nodes on one database: exactly one daemon acts.

- ``lock``: the MySQL named lock that makes one daemon the leader.
- ``shared``: the tables in the network's database that hand ownership over on a failover.
- ``merge``: a new leader's local ledger, brought up to date from the shared rows.
- ``leadership``: the loop that takes, keeps and loses the lock, and the gate the pass awaits
  before every Closte call.
"""

from closte_sync.daemon.cluster.leadership import LeaderInfo, Leadership, Role, default_lock_name

__all__ = ["LeaderInfo", "Leadership", "Role", "default_lock_name"]
