"""The subcommands of the `closte-sync` command, one module each."""
