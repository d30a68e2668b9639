"""The reliability suite: crashes, API faults, failing sources, bad input, secrets, soak.

Heavy cases carry the ``heavy`` marker (registered in pyproject.toml); the test command and
CI run them too. Their sizes and lengths can be cut for a local run by environment
variables, each named where it is read (``CLOSTE_SYNC_CRASH_RUNS``, ``CLOSTE_SYNC_SOAK_S``).
"""
