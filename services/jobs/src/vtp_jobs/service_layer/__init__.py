"""Use cases of the jobs service: commands from the API, events from runners."""
