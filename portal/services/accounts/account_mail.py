"""The mails that carry a one-time password to the owner of a new or reset account, and only
to them.

An admin who creates an account or resets a password must never learn a secret that logs in as
that person: with it they could log in first, set up their own second factor and so own the
account's key pair, and every case sealed to it. So the one-time password made by
``admin.create_account`` or ``staff.reset_password`` goes by mail to the account's own address
(which the console cannot change) and is never shown in the console, flashed, logged or audited.
The messages name no case.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

from portal.models import StaffUser
from portal.services.accounts.accounts import ONE_TIME_PASSWORD_HOURS, PasswordReset
from portal.services.accounts.administration import NewAccount
from portal.services.notifications.mail import compose
from portal.services.notifications.notify import Texts
from portal.settings import Settings


def _login_line(settings: Settings, texts: Texts) -> str:
    if settings.portal_url:
        line = texts.gettext(
            "Log in with it at %(url)s and choose your own password straight away.",
            url=settings.portal_url.rstrip("/") + "/staff/login",
        )
    else:
        line = texts.gettext("Log in to the portal with it and choose your own password.")
    lapse = texts.gettext(
        "It stops working after %(hours)d hours; an admin can then send you a new one.",
        hours=ONE_TIME_PASSWORD_HOURS,
    )
    return f"{line} {lapse}"


def welcome_message(
    settings: Settings, created: NewAccount, now: dt.datetime, texts: Texts
) -> EmailMessage:
    """The message to the owner of a new account with its one-time password."""
    user = created.user
    lines = [
        texts.gettext(
            "An admin of the ombuds portal made an account for you: %(email)s.", email=user.email
        ),
        "",
        texts.gettext("Your one-time password:"),
        "",
        "    " + created.temporary_password,
        "",
        _login_line(settings, texts),
        texts.gettext(
            "You will then set up an authenticator app as your second factor and receive your "
            "recovery key: keep it on paper, apart from your password."
        ),
        "",
        texts.gettext(
            "Nobody else was given this password, not even the admin who made the account. If "
            "you did not expect this message, do not use it: tell a colleague you trust in the "
            "ombuds office."
        ),
    ]
    subject = texts.gettext("Your ombuds portal account")
    return compose(settings, user.email, subject, "\n".join(lines) + "\n", now)


def reset_message(
    settings: Settings, user: StaffUser, done: PasswordReset, now: dt.datetime, texts: Texts
) -> EmailMessage:
    """The message to ``user`` with the one-time password of ``done``."""
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
        _login_line(settings, texts),
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
