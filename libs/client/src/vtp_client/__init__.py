"""Python client of the vision training platform."""
