"""closte-sync: shared."""
