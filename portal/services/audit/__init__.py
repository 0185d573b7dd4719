"""The audit chain (append, verify) and reading it."""
