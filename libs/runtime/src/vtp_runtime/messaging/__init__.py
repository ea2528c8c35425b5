"""Events over Kafka: CloudEvents binary mode, outbox relay, idempotent consumers."""
