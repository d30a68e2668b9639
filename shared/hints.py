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
        meaning="The domain does not point at this network yet, so visitors cannot reach it.",
        action=(
            "Create an A record for the network's IP address (or a CNAME to the network's main "
            "domain) at the domain's DNS provider, then wait for the records to propagate."
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
