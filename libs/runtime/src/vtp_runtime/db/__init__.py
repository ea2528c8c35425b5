"""PostgreSQL plumbing: engine, migrations, and the outbox/inbox tables."""
