"""Use cases of the datasets service, one handler per command."""
