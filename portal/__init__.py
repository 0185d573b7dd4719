"""Anonymous employee feedback and grievance portal."""
