"""The mail that carries a reset account's one-time password to its owner, and only to them.

An admin who resets a password must never learn a secret that logs in as that person: with it
they could log in, set up their own second factor and so own the account's new key pair. So the
one-time password made by ``staff.reset_password`` goes by mail to the account's own address
(which the console cannot change) and is never shown in the console, flashed, logged or audited.
The message names no case.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

from portal.models import StaffUser
from portal.services.mail import compose
from portal.services.notify import Texts
from portal.services.staff import PasswordReset
from portal.settings import Settings


def reset_message(
    settings: Settings, user: StaffUser, done: PasswordReset, now: dt.datetime, texts: Texts
) -> EmailMessage:
    """The message to ``user`` with the one-time password of ``done``."""
    if settings.portal_url:
        login = texts.gettext(
            "Log in with it at %(url)s and choose your own password straight away.",
            url=settings.portal_url.rstrip("/") + "/staff/login",
        )
    else:
        login = texts.gettext("Log in to the portal with it and choose your own password.")
    lines = [
        texts.gettext(
            "An admin of the ombuds portal reset the password of your account %(email)s.",
            email=user.email,
        ),
        "",
        texts.gettext("Your one-time password:"),
        "",
        "    " + done.temporary_password,
        "",
        login,
    ]
    if done.second_factor_reset:
        lines += [
            "",
            texts.gettext(
                "Your second factor was cleared: you will set up your authenticator app again."
            ),
        ]
    if not done.kept_access:
        lines += [
            "",
            texts.gettext(
                "Your account has a new key. Colleagues who hold your cases share them with you "
                "again once you read them the key fingerprint shown on your account page, "
                "yourself, in person or on a call."
            ),
        ]
    lines += [
        "",
        texts.gettext(
            "Nobody else was given this password, not even the admin who made the reset. If you "
            "did not expect this message, do not use it: tell a colleague you trust in the "
            "ombuds office."
        ),
    ]
    subject = texts.gettext("Your ombuds portal password was reset")
    return compose(settings, user.email, subject, "\n".join(lines) + "\n", now)
