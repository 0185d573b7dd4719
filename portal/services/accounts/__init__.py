"""Staff accounts: creation, log-in, sessions, passwords, API tokens, permissions."""
