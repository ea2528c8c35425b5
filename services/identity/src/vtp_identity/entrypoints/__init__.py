"""Entrypoints of the identity service: REST routes and the admin CLI."""
