"""`vtp`: the platform's command line."""
