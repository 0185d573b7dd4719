"""Outgoing e-mail: a small Mailer interface, an SMTP implementation and a "print" one.

The portal sends staff two kinds of mail, both built to name no case (see ``services.notify``).
With no SMTP host configured, the print mailer writes each message exactly as it would be handed
to a server, so a demo or a first installation shows what would go out.
"""

from __future__ import annotations

import abc
import datetime as dt
import smtplib
import ssl
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from portal.settings import Settings

#: The sender of printed messages when no ``smtp_from`` is configured.
PRINT_FROM = "portal@localhost"


@dataclass(frozen=True)
class Delivery:
    """What became of one message: ``error`` is None when the server (or the printer) took it."""

    message: EmailMessage
    error: str | None = None

    @property
    def recipient(self) -> str:
        return str(self.message["To"])

    @property
    def ok(self) -> bool:
        return self.error is None


def compose(settings: Settings, to: str, subject: str, body: str, now: dt.datetime) -> EmailMessage:
    """A plain-text message. Its Date is the batch's time, which says nothing about a case."""
    sender = settings.smtp_from or PRINT_FROM
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(now.astimezone(dt.UTC))
    # The sender's domain, not this server's host name, which make_msgid would use by default.
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message.set_content(_wrapped(body))
    return message


def _wrapped(body: str) -> str:
    """Lines of at most 76 characters (a link stays whole), so the message goes out as readable
    7-bit text rather than quoted-printable."""
    lines = [
        textwrap.fill(line, 76, break_long_words=False, break_on_hyphens=False) if line else ""
        for line in body.split("\n")
    ]
    return "\n".join(lines)


def render(message: EmailMessage) -> str:
    """The message exactly as it would be handed to a server, between two marker lines."""
    return "\n".join(
        (
            f"----- message to {message['To']} -----",
            message.as_string().rstrip("\n"),
            "----- end of message -----",
        )
    )


class Mailer(abc.ABC):
    """Hands messages over for delivery; one failed message never stops the others."""

    #: A short description for the command's output, e.g. "SMTP mail.example.org:587 (STARTTLS)".
    description: str

    @abc.abstractmethod
    def deliver(self, messages: Sequence[EmailMessage]) -> list[Delivery]:
        """One Delivery per message, in order."""


class PrintMailer(Mailer):
    """Writes each message, headers and body, as it would be sent."""

    description = "print (no SMTP host configured: messages are printed, not sent)"

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    def deliver(self, messages: Sequence[EmailMessage]) -> list[Delivery]:
        for message in messages:
            self._write(render(message))
        return [Delivery(m) for m in messages]


def _reason(error: BaseException) -> str:
    """A one-line reason that holds what the server said, never the password we sent."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [
            f"{code} {text.decode(errors='replace')}" for code, text in error.recipients.values()
        ]
        return "recipient refused: " + "; ".join(codes)
    if isinstance(error, smtplib.SMTPResponseException):
        text = (
            error.smtp_error.decode(errors="replace")
            if isinstance(error.smtp_error, bytes)
            else str(error.smtp_error)
        )
        return f"{type(error).__name__}: {error.smtp_code} {text}"
    return f"{type(error).__name__}: {error}"


_REFUSED = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


class SmtpMailer(Mailer):
    """smtplib over one connection: STARTTLS when set (refusing a server that does not offer it),
    log-in when a user name is set, and a timeout on every socket operation."""

    def __init__(self, settings: Settings, ssl_context: ssl.SSLContext | None = None) -> None:
        self._settings = settings
        # Verifies the server's certificate and host name; tests pass one that trusts their CA.
        self._ssl_context = ssl_context or ssl.create_default_context()
        tls = "STARTTLS" if settings.smtp_starttls else "no TLS"
        self.description = f"SMTP {settings.smtp_host}:{settings.smtp_port} ({tls})"

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
        try:
            client.ehlo()
            if s.smtp_starttls:
                # Raises SMTPNotSupportedError when the server does not offer STARTTLS: the
                # messages then stay unsent rather than crossing the network in the clear.
                client.starttls(context=self._ssl_context)
                client.ehlo()
            if s.smtp_username:
                client.login(s.smtp_username, s.smtp_password)
        except BaseException:
            client.close()
            raise
        return client

    def deliver(self, messages: Sequence[EmailMessage]) -> list[Delivery]:
        results: list[Delivery] = []
        client: smtplib.SMTP | None = None
        connect_error: str | None = None
        try:
            for message in messages:
                if client is None and connect_error is None:
                    try:
                        client = self._connect()
                    except (OSError, smtplib.SMTPException) as error:
                        connect_error = "could not connect: " + _reason(error)
                if client is None:
                    results.append(Delivery(message, connect_error))
                    continue
                try:
                    client.send_message(message)
                    results.append(Delivery(message))
                except _REFUSED as error:
                    # The server said no to this message (smtplib has reset the transaction);
                    # the connection is fine for the next one.
                    results.append(Delivery(message, _reason(error)))
                    if client.sock is None:  # a 421 reply: smtplib has closed the connection
                        client = None
                except (OSError, smtplib.SMTPException) as error:
                    # Disconnected, timed out, or in an unknown state: the next message gets a
                    # fresh connection.
                    results.append(Delivery(message, _reason(error)))
                    client.close()
                    client = None
        finally:
            if client is not None:
                try:
                    client.quit()
                except (OSError, smtplib.SMTPException):
                    client.close()
        return results


def mailer_for(settings: Settings, write: Callable[[str], None]) -> Mailer:
    """SMTP when a host is configured, else the print mailer writing through ``write``."""
    if settings.smtp_host:
        return SmtpMailer(settings)
    return PrintMailer(write)
