"""The daemon proper: the engine (one pass, one round of checks), the loops that run it as
a service, and what systemd and the terminal see of it."""
