"""The demo's network: a few sites and mappings, a domains file, and DNS that tells a story.

Most names point at the network (they go checking-dns -> checking-ssl-cert -> done once the
sandbox's certificate is issued); one points elsewhere (it fails DNS with a precise hint);
one is already held by another Closte application (Closte refuses it). Every address is on
loopback: the "elsewhere" address is 127.0.0.9, where nothing listens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from closte_sync.sandbox.runner import Sandbox
from closte_sync.sandbox.wordpress import SampleNetwork, build_network

SITES = ("shop.network.sandbox.test", "blog.network.sandbox.test")
MAPPINGS = (
    ("shop-example.test", 2),
    ("bücher-laden.test", 3),
    ("wrong-dns.example.test", 3),
    ("taken.example.test", 2),
)
ELSEWHERE = "127.0.0.9"
WRONG_DNS = "wrong-dns.example.test"
TAKEN = "taken.example.test"
OTHER_APPLICATION_KEY = "demo-other-application"
DOMAINS_FILE = """# Domains kept on Closte besides the network's mappings (one per line).
landing.example.test
*.campaigns.example.test   # a wildcard alias
not a domain               # a bad line: reported with its place, the rest still count
"""
# What should go live: every name but the one with wrong DNS and the refused one.
LIVE = (
    "shop.network.sandbox.test",
    "blog.network.sandbox.test",
    "shop-example.test",
    "xn--bcher-laden-thb.test",
    "landing.example.test",
    "*.campaigns.example.test",
)


@dataclass(frozen=True)
class DemoNetwork:
    network: SampleNetwork
    domains_file: Path


def lay_out_demo(sandbox: Sandbox, base: Path) -> DemoNetwork:
    network = build_network(
        base / "wordpress",
        api_key=sandbox.api_key,
        main_domain=sandbox.network_host,
        sites=SITES,
        mappings=MAPPINGS,
    )
    domains_file = base / "domains.txt"
    domains_file.write_text(DOMAINS_FILE)
    for name in LIVE:  # a wildcard name gets a wildcard record, as a customer would make
        sandbox.dns.set_a(name, [sandbox.network_ip])
    sandbox.dns.set_a(WRONG_DNS, [ELSEWHERE])
    sandbox.dns.set_a(TAKEN, [sandbox.network_ip])
    sandbox.state.api_keys.add(OTHER_APPLICATION_KEY)
    sandbox.state.add_alias(OTHER_APPLICATION_KEY, TAKEN, wildcard=False)
    return DemoNetwork(network, domains_file)
