"""Mail to staff: the mailer and the batched notices."""
