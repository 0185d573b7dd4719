"""The `portal` command: one click module per command family; ``main`` is the entry point."""

from portal.cli.main import main as main
