"""Use cases of the identity service, one handler per command."""
