"""Where the desired set of domains comes from: the multisite database and the domains file."""
