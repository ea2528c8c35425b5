"""Cross-cutting plumbing shared by the platform's services (never domain logic)."""
