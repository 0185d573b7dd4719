"""Attachments: cleaning what reporters send, storing it encrypted, reading it back."""
