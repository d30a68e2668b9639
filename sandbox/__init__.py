"""closte-sync: sandbox."""
