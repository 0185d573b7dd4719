"""The organisation's configuration: taxonomy, its TOML export, policy, console editing."""
