"""closte-sync: daemon."""
