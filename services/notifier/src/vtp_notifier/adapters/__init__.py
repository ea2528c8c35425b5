"""Adapters of the notifier service: ORM tables, broker, storage."""
