"""closte-sync: tui."""
