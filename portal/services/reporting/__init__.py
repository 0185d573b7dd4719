"""The reporter's side: intake, follow-up, routing, the access code, throttles."""
