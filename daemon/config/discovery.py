"""Finding the WordPress root and its wp-config.php, the way WordPress does.

wp-load.php reads ABSPATH/wp-config.php, or else the wp-config.php one folder up, as long
as that folder is not a WordPress root of its own (no wp-settings.php there).
"""

from __future__ import annotations

from pathlib import Path

WP_CONFIG = "wp-config.php"
_ROOT_MARKER = "wp-settings.php"


def wp_config_for_root(root: Path) -> Path | None:
    """The wp-config.php WordPress at ``root`` would load, or None."""
    here = root / WP_CONFIG
    if here.is_file():
        return here
    above = root.parent / WP_CONFIG
    if above.is_file() and not (root.parent / _ROOT_MARKER).exists():
        return above
    return None


def discover_root(cwd: Path) -> tuple[Path, Path] | None:
    """(WordPress root, wp-config.php) for the first folder from ``cwd`` upward that has one.

    A folder counts when it holds wp-config.php, or when it is a WordPress root
    (wp-settings.php) whose wp-config.php sits one folder up.
    """
    for folder in (cwd, *cwd.parents):
        if (folder / WP_CONFIG).is_file():
            return folder, folder / WP_CONFIG
        if (folder / _ROOT_MARKER).exists():
            found = wp_config_for_root(folder)
            if found is not None:
                return folder, found
    return None
