"""Operator tooling, not the domain: backups, the doctor, migrations, the demo."""
