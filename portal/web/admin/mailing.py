"""Sending a one-time password from the console to the account's owner (a new account, a reset):
the wording in the portal's default language, one message, delivered before the commit."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.services.notifications.mail import Mailer
from portal.services.notifications.notify import Texts
from portal.web import state

#: Why the console refuses to make a one-time password when no mail server is configured.
NO_MAIL = _l(
    "No mail server is configured (PORTAL_SMTP_HOST), so the one-time password could reach "
    "this person only through you, and an admin must never hold a secret that logs in as "
    "someone else. Nothing was changed. Configure mail, or have the server's operator do it "
    "on the server (“portal create-staff”, “portal reset-password”)."
)


class _BabelTexts:
    def gettext(self, string: str, **variables: Any) -> str:
        return str(_(string, **variables))

    def ngettext(self, singular: str, plural: str, num: int, **variables: Any) -> str:
        return str(ngettext(singular, plural, num, **variables))


def mailer() -> Mailer | None:
    return state.state().mailer


def send(mailer: Mailer, build: Callable[[Texts], EmailMessage]) -> bool:
    """Build the message in the portal's default language and hand it to the mail server;
    whether the server took it."""
    with force_locale(state.settings().default_locale):
        message = build(_BabelTexts())
    [delivery] = mailer.deliver([message])
    return delivery.ok
