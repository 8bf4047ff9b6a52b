"""Training internals: resume state, locking, tracking."""
