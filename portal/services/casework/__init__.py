"""Cases as staff handle them: reading, thread, triage, workflow, deadlines, access, hold,
retention."""
