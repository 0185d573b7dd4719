"""A real SMTP server on loopback for the tests (aiosmtpd), recording what it is handed.

Mail tests talk to it through the portal's own smtplib code, so STARTTLS, log-in, refusals and
timeouts are the real protocol, not a stub.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        content: str = part.get_content()  # type: ignore[attr-defined]
        return content.replace("\r\n", "\n")  # line ends as sent on the wire


@dataclass
class Recorder:
    """The server's handler: answers the addresses in ``refuse`` with the reply given there
    (e.g. "550 ..."), records the rest."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)
    password: str = "smtp-secret"

    async def handle_RCPT(  # aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        message = message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        # handled=False: aiosmtpd answers 235 or 535 itself.
        return AuthResult(success=password == self.password, handled=False)

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if r.rcpt_tos == [address]]


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: Recorder


def free_port() -> int:
    # aiosmtpd's Controller cannot bind port 0 (it connects to its own port to check it is up).
    # PORTAL_TEST_PORTS ("8180-8199") keeps a run inside the ports it was given on a shared host.
    first, _, last = os.environ.get("PORTAL_TEST_PORTS", "").partition("-")
    candidates = range(int(first), int(last) + 1) if first and last else [0]
    for candidate in candidates:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port: int = probe.getsockname()[1]
            return port
    raise RuntimeError("no free port in PORTAL_TEST_PORTS")  # pragma: no cover


@contextmanager
def smtp_server(**controller_options: Any) -> Iterator[SmtpServer]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        authenticator=recorder.authenticate,
        **controller_options,
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, recorder)
    finally:
        controller.stop()


@dataclass
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A context that trusts this (self-signed) certificate and still checks the host."""
        return ssl.create_default_context(cafile=str(self.cert))


def self_signed_certificate(folder: Path) -> Certificate:
    """A certificate for 127.0.0.1 made with the openssl command line tool."""
    if shutil.which("openssl") is None:  # pragma: no cover - openssl ships with the image
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return Certificate(cert, key)


@contextmanager
def app_mailbox(app: Any, **controller_options: Any) -> Iterator[Recorder]:
    """A real SMTP server on loopback, and ``app`` sending its request-time mail (a reset's
    one-time password) to it through the portal's own SMTP mailer."""
    from portal.services.notifications.mail import SmtpMailer

    state = app.extensions["portal"]
    with smtp_server(auth_require_tls=False, **controller_options) as server:
        settings = state.settings.replace(
            smtp_host=server.host, smtp_port=server.port, smtp_starttls=False
        )
        previous, state.mailer = getattr(state, "mailer", None), SmtpMailer(settings)
        try:
            yield server.recorder
        finally:
            state.mailer = previous
