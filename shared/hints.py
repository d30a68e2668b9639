"""Troubleshooting hints: what a failure means and what the operator can do about it.

The daemon attaches a hint id to every failure it reports; the TUI and the CLI look the id up
here and show the title, the meaning and the action. Ids are stable names (docs and the TUI
refer to them): add freely, rename never.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hint:
    id: str
    title: str
    meaning: str  # what the failure means, in plain words
    action: str  # what to do about it

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "meaning": self.meaning, "action": self.action}


_CATALOGUE: tuple[Hint, ...] = (
    Hint(
        id="closte-no-api-key",
        title="No Closte API key configured",
        meaning="closte-sync has no API key, so it cannot ask Closte to add or remove aliases.",
        action=(
            "On Closte hosting the key is normally in wp-config.php as "
            "define('CLOSTE_CLIENT_API_KEY', '...'); point wordpress_root at the site, or set "
            "[closte] api_key in the config file or CLOSTE_SYNC_CLOSTE_API_KEY."
        ),
    ),
    Hint(
        id="closte-api-key",
        title="Check the Closte API key",
        meaning="Closte refused the API key: it is wrong, revoked, or belongs to another account.",
        action=(
            "Compare CLOSTE_CLIENT_API_KEY in wp-config.php (Closte dashboard: Sites > Settings "
            "> WP-Config) with the key shown in the Closte dashboard, and update whichever is "
            "stale. Run `closte-sync closte test` to check it."
        ),
    ),
    Hint(
        id="closte-permissions",
        title="Check the account's permissions",
        meaning="Closte accepted the key but does not allow it to change this application.",
        action=(
            "In the Closte dashboard, check that the key's user may manage domains for this "
            "site (team member roles), or use the site owner's key."
        ),
    ),
    Hint(
        id="closte-domain-taken",
        title="The domain is already on Closte elsewhere",
        meaning="Another Closte application already holds this domain, so it cannot be added here.",
        action=(
            "Find the application that holds the domain in the Closte dashboard and remove it "
            "there (or ask its owner to), then let closte-sync retry."
        ),
    ),
    Hint(
        id="domain-invalid",
        title="The domain name is not valid",
        meaning="The name is empty or malformed, so Closte (or closte-sync) refused it.",
        action=(
            "Fix the mapping in Ultimate Multisite (Domains) or the domains file: a name like "
            "example.com or *.example.com, without scheme, path or port."
        ),
    ),
    Hint(
        id="dns-not-pointing",
        title="Check the domain's DNS",
        meaning=(
            "The domain does not point at this network's Closte server yet, so visitors (and "
            "Closte's certificate) cannot reach it."
        ),
        action=(
            "At the domain's DNS provider, create an A record for the Closte server's IP "
            "address (or a CNAME to the network's main domain) and remove records pointing "
            "elsewhere; the check names the address it found and the one expected. DNS changes "
            "can take a while to propagate; closte-sync keeps checking."
        ),
    ),
    Hint(
        id="dns-nxdomain",
        title="The domain does not exist in DNS",
        meaning=(
            "DNS answers that the name (or the target of its CNAME) does not exist (NXDOMAIN)."
        ),
        action=(
            "Check the spelling of the mapping, that the domain is registered and its name "
            "servers are set at the registrar, then create an A record for the Closte "
            "server's IP (or a CNAME to the network's main domain). For a wildcard mapping "
            "create a wildcard record (*.example.com)."
        ),
    ),
    Hint(
        id="dns-servfail",
        title="The domain's DNS servers are failing",
        meaning=(
            "The resolver could not get an answer from the domain's DNS servers (SERVFAIL): "
            "a broken delegation, unreachable name servers or DNSSEC errors."
        ),
        action=(
            "Check the domain's name servers at the registrar and its DNSSEC settings (a DS "
            "record left after moving DNS is a common cause); once DNS answers, it must point "
            "at the Closte server."
        ),
    ),
    Hint(
        id="dns-refused",
        title="A name server refused to answer",
        meaning="The name server asked refused the question (REFUSED).",
        action=(
            "If [checks] nameservers is set, check that this server may use it; otherwise "
            "check the domain's name servers at its registrar."
        ),
    ),
    Hint(
        id="dns-cname-loop",
        title="The domain's CNAME records go round in a loop",
        meaning="Following the CNAME records never reaches an address: they loop or run too long.",
        action=(
            "Fix the CNAME records the check lists: point the domain's CNAME at the network's "
            "main domain, or replace it with an A record for the Closte server's IP."
        ),
    ),
    Hint(
        id="dns-no-address",
        title="The domain has no address record",
        meaning="The name exists in DNS but has no A or AAAA record.",
        action=(
            "Create an A record for the Closte server's IP address (or a CNAME to the "
            "network's main domain) at the domain's DNS provider."
        ),
    ),
    Hint(
        id="dns-unreachable",
        title="Could not ask DNS (no try counted)",
        meaning=(
            "No name server answered before the deadline, so the domain could not be checked; "
            "the problem is on this server's side, not the domain's."
        ),
        action=(
            "Check this server's network and /etc/resolv.conf, or [checks] nameservers if "
            "set. The domain is checked again later; the failed check does not count as a try."
        ),
    ),
    Hint(
        id="dns-no-target",
        title="The network's address is not known",
        meaning=(
            "closte-sync does not know which IP address or host name the domains should point "
            "at, so it cannot judge DNS answers."
        ),
        action=(
            "Set [checks] network_ips to the Closte server's IP address (Closte dashboard, "
            "the site's info page) or [checks] network_hosts to the network's main domain, "
            "and check DOMAIN_CURRENT_SITE in wp-config.php. `closte-sync doctor` shows it."
        ),
    ),
    Hint(
        id="tls-not-issued",
        title="Closte has not issued the certificate yet",
        meaning=(
            "The domain answers with a placeholder certificate from an untrusted issuer: the "
            "real certificate is not there yet."
        ),
        action=(
            "Wait: Closte issues the certificate by itself after the domain is added, usually "
            "within 5-10 minutes, once DNS points at the Closte server. closte-sync keeps "
            "checking (20 tries on Closte). If it lasts, check DNS and contact Closte support."
        ),
    ),
    Hint(
        id="tls-expired",
        title="The certificate has expired",
        meaning="The domain's certificate is past its end date; browsers refuse it.",
        action=(
            "Closte renews certificates by itself; a renewal fails when the domain no longer "
            "points at the Closte server or the alias was removed. Check both; if they are "
            "right, contact Closte support."
        ),
    ),
    Hint(
        id="tls-expiring",
        title="The certificate expires soon",
        meaning="The domain's certificate is still valid but ends within the warning period.",
        action=(
            "Nothing yet: Closte renews certificates before they expire. If it is not renewed "
            "within a few days, check that DNS still points at the Closte server and the alias "
            "is on Closte."
        ),
    ),
    Hint(
        id="tls-not-yet-valid",
        title="The certificate is not valid yet",
        meaning="The certificate's start date is in the future: a clock is wrong somewhere.",
        action="Check the time on this server (NTP); if it is right, contact Closte support.",
    ),
    Hint(
        id="tls-mismatch",
        title="The certificate is for another name",
        meaning=(
            "The server that answers for the domain shows a certificate for other names, so "
            "it does not serve this domain (yet)."
        ),
        action=(
            "If the alias was just added, wait: Closte usually issues the certificate within "
            "5-10 minutes. Otherwise check that the domain points at this network's Closte "
            "server (not an old host or a CDN) and that the alias is on Closte "
            "(`closte-sync closte list`)."
        ),
    ),
    Hint(
        id="tls-unreachable",
        title="Cannot connect to the domain on port 443",
        meaning="The connection to the address DNS gave was refused or got no answer.",
        action=(
            "Check that the domain points at the Closte server (the DNS check) and that no "
            "firewall blocks HTTPS (port 443) between this server and it."
        ),
    ),
    Hint(
        id="tls-handshake",
        title="The TLS handshake failed",
        meaning=(
            "Something answers on the HTTPS port but does not complete TLS for this name "
            "(no certificate for it, or not an HTTPS server)."
        ),
        action=(
            "If the alias was just added, wait 5-10 minutes for Closte's certificate; "
            "otherwise check that DNS points at the Closte server and not another host."
        ),
    ),
    Hint(
        id="closte-rate-limited",
        title="Closte asked us to slow down",
        meaning="Closte answered 'too many requests'; closte-sync waits and tries again.",
        action=(
            "Nothing, if it passes. If it keeps happening, lower [closte] rate_per_second and "
            "concurrency in the config file."
        ),
    ),
    Hint(
        id="closte-down",
        title="Closte is having trouble",
        meaning="Closte's API answered with a server error; the problem is on Closte's side.",
        action=(
            "closte-sync retries with backoff. If it lasts, check Closte's status page or "
            "contact Closte support."
        ),
    ),
    Hint(
        id="closte-timeout",
        title="Closte did not answer in time",
        meaning="The request was sent but no answer came before the timeout.",
        action=(
            "closte-sync retries. If it lasts, check the server's outbound network and "
            "Closte's status; [closte] timeout_s sets how long to wait."
        ),
    ),
    Hint(
        id="network-unreachable",
        title="Cannot reach Closte",
        meaning="The connection to Closte's API failed (refused, reset, or no route).",
        action=(
            "Check the server's outbound network, DNS resolution of app.closte.com, firewalls "
            "and proxies, and that [closte] base_url is right."
        ),
    ),
    Hint(
        id="closte-malformed-answer",
        title="Closte's answer could not be read",
        meaning="The answer was empty or not the JSON Closte normally sends.",
        action=(
            "Usually passing: closte-sync retries empty answers. If it lasts, check that "
            "[closte] base_url points at Closte's API and contact Closte support."
        ),
    ),
    Hint(
        id="closte-html-page",
        title="A web page came back instead of Closte's answer",
        meaning=(
            "Something between this server and Closte (a proxy, a firewall, a maintenance "
            "page) answered with HTML."
        ),
        action=(
            "closte-sync retries. If it lasts, check [closte] base_url, any outbound proxy, "
            "and Closte's status page."
        ),
    ),
    Hint(
        id="closte-rejected",
        title="Closte refused the request",
        meaning="Closte answered with an error closte-sync does not know; its message says why.",
        action=(
            "Read Closte's message in the event details; if it is unclear, contact Closte "
            "support with the domain and the time of the request."
        ),
    ),
)

HINTS: dict[str, Hint] = {hint.id: hint for hint in _CATALOGUE}


def get_hint(hint_id: str) -> Hint:
    """The hint with this id; KeyError names the id when it is not in the catalogue."""
    try:
        return HINTS[hint_id]
    except KeyError:
        raise KeyError(f"no troubleshooting hint with id {hint_id!r}") from None
