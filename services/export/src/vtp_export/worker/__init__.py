"""The exporter worker: a consumer group on export.requested.v1, each export in a child process."""
