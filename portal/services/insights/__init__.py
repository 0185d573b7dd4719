"""Management figures under disclosure control, and systemic signals."""
