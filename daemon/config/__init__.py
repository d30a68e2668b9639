"""Configuration: defaults, wp-config.php, the TOML file and the environment, in layers.

``load_config`` is the one entry point; ``closte-sync config`` shows what it found.
"""

from closte_sync.daemon.config.loader import load_config
from closte_sync.daemon.config.model import ConfigError, ConfigProblem, LoadedConfig, ValueOrigin
from closte_sync.daemon.config.wpconfig import WpConfig, parse_wp_config, read_wp_config

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "LoadedConfig",
    "ValueOrigin",
    "WpConfig",
    "load_config",
    "parse_wp_config",
    "read_wp_config",
]
