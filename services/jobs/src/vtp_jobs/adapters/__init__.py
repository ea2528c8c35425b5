"""Adapters of the jobs service: ORM tables, broker, storage."""
