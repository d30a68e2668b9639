"""The control socket: the only door into a running daemon.

``server.ControlServer`` serves the protocol of ``closte_sync.shared.protocol`` on a Unix
socket; ``hub.ControlHub`` fans the daemon's events out to the store and to subscribers;
``backend.DaemonActions`` is what the daemon plugs in; ``client.ControlClient`` is the
CLI's and the TUI's side. Import the modules themselves: this package imports nothing, so
a client does not load the server's dependencies.
"""
