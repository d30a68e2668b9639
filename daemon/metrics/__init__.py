"""Prometheus metrics for the daemon (``[metrics] listen``, off by default).

Import the submodules themselves: this package stays light so that reading the
configuration (which checks the listen address) does not import the HTTP server.

- ``listen``: the ``host:port`` setting, parsed and checked.
- ``store_counts``: domain counts read from the store on a connection of their own.
- ``calls``: Closte calls and passes, counted from the daemon's events.
- ``collector``: the scrape-time Collector over the daemon's state and cached counts.
- ``endpoint``: the aiohttp server the daemon starts and stops.
"""
