"""Entrypoints of the jobs service: REST routes and Kafka subscribers."""
