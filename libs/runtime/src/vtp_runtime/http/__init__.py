"""HTTP plumbing: problem+json errors, auth middleware, health route, app factory."""
