"""The mailers against a real SMTP server on loopback, and the mail settings."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from portal.services.notifications import mail
from portal.settings import PROJECT_ROOT, Settings, SettingsError, load_settings
from tests.support.smtp_server import Certificate, SmtpServer, self_signed_certificate, smtp_server

NOW = dt.datetime(2026, 5, 14, 6, 0, tzinfo=dt.UTC)


def _settings(server: SmtpServer | None = None, **changes: object) -> Settings:
    base = Settings(smtp_from="ombuds@example.org", smtp_timeout_seconds=5)
    if server is not None:
        base = base.replace(smtp_host=server.host, smtp_port=server.port, smtp_starttls=False)
    return base.replace(**changes)


def _messages(settings: Settings, *recipients: str) -> list[EmailMessage]:
    return [mail.compose(settings, to, "Subject line", "Body text\n", NOW) for to in recipients]


@pytest.fixture
def plain_server() -> Iterator[SmtpServer]:
    with smtp_server(auth_require_tls=False) as server:
        yield server


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(certificate: Certificate) -> Iterator[SmtpServer]:
    with smtp_server(tls_context=certificate.server_context(), require_starttls=True) as server:
        yield server


def test_compose_builds_a_plain_message_without_the_host_name() -> None:
    settings = _settings()
    message = mail.compose(settings, "ana@example.org", "Hello", "Two cases.\n", NOW)
    assert message["From"] == "ombuds@example.org"
    assert message["To"] == "ana@example.org"
    assert message["Subject"] == "Hello"
    assert message["Date"] == "Thu, 14 May 2026 06:00:00 +0000"
    assert message["Message-ID"].endswith("@example.org>")
    assert socket.gethostname() not in message.as_string()
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "Two cases.\n"


def test_long_lines_are_wrapped_and_links_kept_whole() -> None:
    link = "https://ombuds.example.org/" + "x" * 40
    body = "word " * 40 + "\n\nLog in to the portal to see them: " + link + "\n"
    message = mail.compose(_settings(), "ana@example.org", "Hello", body, NOW)
    assert message["Content-Transfer-Encoding"] == "7bit"
    content = message.get_content()
    assert link in content.splitlines()
    assert all(len(line) <= 76 for line in content.splitlines() if link not in line)
    assert content.split() == body.split()


def test_smtp_delivers_each_message_to_its_recipient(plain_server: SmtpServer) -> None:
    settings = _settings(plain_server)
    mailer = mail.mailer_for(settings, print)
    assert isinstance(mailer, mail.SmtpMailer)
    deliveries = mailer.deliver(_messages(settings, "ana@example.org", "bo@example.org"))
    assert [d.ok for d in deliveries] == [True, True]
    got = plain_server.recorder.received
    assert [(r.mail_from, r.rcpt_tos) for r in got] == [
        ("ombuds@example.org", ["ana@example.org"]),
        ("ombuds@example.org", ["bo@example.org"]),
    ]
    assert got[0].message["Subject"] == "Subject line" and got[0].body == "Body text\n"
    assert plain_server.recorder.logins == []  # no user name set: no log-in


def test_a_refused_recipient_does_not_stop_the_others(plain_server: SmtpServer) -> None:
    plain_server.recorder.refuse["gone@example.org"] = "550 5.1.1 mailbox unavailable"
    settings = _settings(plain_server)
    deliveries = mail.SmtpMailer(settings).deliver(
        _messages(settings, "ana@example.org", "gone@example.org", "bo@example.org")
    )
    assert [d.ok for d in deliveries] == [True, False, True]
    assert deliveries[1].recipient == "gone@example.org"
    assert deliveries[1].error is not None and "550" in deliveries[1].error
    assert [r.rcpt_tos for r in plain_server.recorder.received] == [
        ["ana@example.org"],
        ["bo@example.org"],
    ]


def test_a_closed_connection_is_opened_again_for_the_next_message(
    plain_server: SmtpServer,
) -> None:
    """A 421 reply makes smtplib drop the connection; the messages after it still go out."""
    plain_server.recorder.refuse["busy@example.org"] = "421 4.3.2 closing, try later"
    settings = _settings(plain_server)
    deliveries = mail.SmtpMailer(settings).deliver(
        _messages(settings, "busy@example.org", "ana@example.org")
    )
    assert [d.ok for d in deliveries] == [False, True]
    assert "421" in (deliveries[0].error or "")
    assert [r.rcpt_tos for r in plain_server.recorder.received] == [["ana@example.org"]]


def test_login_when_a_user_name_is_set(plain_server: SmtpServer) -> None:
    settings = _settings(plain_server, smtp_username="portal", smtp_password="smtp-secret")
    deliveries = mail.SmtpMailer(settings).deliver(_messages(settings, "ana@example.org"))
    assert deliveries[0].ok, deliveries[0].error
    assert plain_server.recorder.logins == [("portal", "smtp-secret")]


def test_wrong_password_fails_every_message_and_is_not_echoed(plain_server: SmtpServer) -> None:
    settings = _settings(plain_server, smtp_username="portal", smtp_password="wrong-secret")
    deliveries = mail.SmtpMailer(settings).deliver(
        _messages(settings, "ana@example.org", "bo@example.org")
    )
    assert [d.ok for d in deliveries] == [False, False]
    assert all(d.error and "could not connect" in d.error and "535" in d.error for d in deliveries)
    assert all("wrong-secret" not in (d.error or "") for d in deliveries)
    assert plain_server.recorder.received == []


def test_starttls_with_login(tls_server: SmtpServer, certificate: Certificate) -> None:
    settings = _settings(
        tls_server, smtp_starttls=True, smtp_username="portal", smtp_password="smtp-secret"
    )
    mailer = mail.SmtpMailer(settings, ssl_context=certificate.client_context())
    assert "STARTTLS" in mailer.description
    deliveries = mailer.deliver(_messages(settings, "ana@example.org"))
    assert deliveries[0].ok, deliveries[0].error
    assert tls_server.recorder.logins == [("portal", "smtp-secret")]
    assert len(tls_server.recorder.received) == 1


def test_starttls_refuses_an_untrusted_certificate(tls_server: SmtpServer) -> None:
    settings = _settings(tls_server, smtp_starttls=True)
    deliveries = mail.SmtpMailer(settings).deliver(_messages(settings, "ana@example.org"))
    assert not deliveries[0].ok
    assert deliveries[0].error is not None and "CERTIFICATE_VERIFY_FAILED" in deliveries[0].error
    assert tls_server.recorder.received == []


def test_starttls_never_falls_back_to_plain_text(plain_server: SmtpServer) -> None:
    """A server (or someone in between) that does not offer STARTTLS gets nothing."""
    settings = _settings(plain_server, smtp_starttls=True)
    deliveries = mail.SmtpMailer(settings).deliver(_messages(settings, "ana@example.org"))
    assert not deliveries[0].ok
    assert deliveries[0].error is not None and "STARTTLS" in deliveries[0].error
    assert plain_server.recorder.received == []


def test_unreachable_server_fails_each_message_once() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        settings = _settings(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False)
        deliveries = mail.SmtpMailer(settings).deliver(
            _messages(settings, "ana@example.org", "bo@example.org")
        )
    assert [d.ok for d in deliveries] == [False, False]
    assert all("could not connect" in (d.error or "") for d in deliveries)


def test_silent_server_times_out_after_the_setting() -> None:
    """A server that accepts but never greets: the command must not hang."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        settings = _settings(
            smtp_host="127.0.0.1",
            smtp_port=listener.getsockname()[1],
            smtp_starttls=False,
            smtp_timeout_seconds=1,
        )
        result: list[mail.Delivery] = []
        worker = threading.Thread(
            target=lambda: result.extend(
                mail.SmtpMailer(settings).deliver(_messages(settings, "ana@example.org"))
            )
        )
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive()
    assert not result[0].ok and "timed out" in (result[0].error or "")


def test_print_mailer_writes_exactly_the_message() -> None:
    lines: list[str] = []
    settings = _settings()
    mailer = mail.mailer_for(settings, lines.append)
    assert isinstance(mailer, mail.PrintMailer)
    message = _messages(settings, "ana@example.org")[0]
    deliveries = mailer.deliver([message])
    assert deliveries[0].ok
    assert lines == [mail.render(message)]
    assert message.as_string().rstrip("\n") in lines[0]
    assert lines[0].startswith("----- message to ana@example.org -----")


def test_print_mode_without_a_sender_uses_a_local_one() -> None:
    message = mail.compose(Settings(), "ana@example.org", "Hello", "Body\n", NOW)
    assert message["From"] == mail.PRINT_FROM


# --- settings -----------------------------------------------------------------------------------


def test_mail_settings_defaults() -> None:
    settings = Settings()
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == ("", 587, True)
    assert settings.notify_interval_hours == 6
    assert settings.portal_url == ""


def test_smtp_password_comes_from_the_environment_and_stays_out_of_repr() -> None:
    settings = load_settings(
        {
            "PORTAL_SMTP_HOST": "mail.example.org",
            "PORTAL_SMTP_FROM": "ombuds@example.org",
            "PORTAL_SMTP_USERNAME": "portal",
            "PORTAL_SMTP_PASSWORD": "hunter2-very-secret",
            "PORTAL_SMTP_STARTTLS": "false",
            "PORTAL_NOTIFY_INTERVAL_HOURS": "12",
        }
    )
    assert settings.smtp_password == "hunter2-very-secret"
    assert settings.smtp_starttls is False and settings.notify_interval_hours == 12
    assert "hunter2" not in repr(settings)


def test_mail_settings_from_the_file(tmp_path: Path) -> None:
    config = tmp_path / "portal.toml"
    config.write_text(
        'smtp_host = "mail.example.org"\nsmtp_port = 25\nsmtp_from = "o@example.org"\n'
        'portal_url = "https://ombuds.example.org"\nsmtp_timeout_seconds = 10\n'
    )
    settings = load_settings({}, config)
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_timeout_seconds) == (
        "mail.example.org",
        25,
        10,
    )
    assert settings.portal_url == "https://ombuds.example.org"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PORTAL_NOTIFY_INTERVAL_HOURS": "0"}, "notify_interval_hours"),
        ({"PORTAL_SMTP_TIMEOUT_SECONDS": "0"}, "smtp_timeout_seconds"),
        ({"PORTAL_SMTP_PORT": "0"}, "smtp_port"),
        ({"PORTAL_SMTP_PORT": "70000"}, "smtp_port"),
        ({"PORTAL_SMTP_HOST": "mail.example.org"}, "smtp_from"),
        ({"PORTAL_SMTP_FROM": "Ombuds <o@example.org>"}, "smtp_from"),
        ({"PORTAL_SMTP_PASSWORD": "x"}, "smtp_username"),
        ({"PORTAL_PORTAL_URL": "ombuds.example.org"}, "portal_url"),
        ({"PORTAL_PORTAL_URL": "javascript:alert(1)"}, "portal_url"),
        ({"PORTAL_PORTAL_URL": "https://x.example.org/?next=evil"}, "portal_url"),
        ({"PORTAL_PORTAL_URL": "https://x.example.org/a b"}, "portal_url"),
    ],
)
def test_bad_mail_settings_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)


MAIL_SETTINGS = (
    "smtp_host",
    "smtp_port",
    "smtp_starttls",
    "smtp_username",
    "smtp_password",
    "smtp_from",
    "smtp_timeout_seconds",
    "notify_interval_hours",
    "portal_url",
)


@pytest.mark.parametrize("name", MAIL_SETTINGS)
def test_mail_settings_are_documented(name: str) -> None:
    assert name in Settings.__dataclass_fields__
    assert f"| `{name}` |" in (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    assert f"{name} = " in (PROJECT_ROOT / "config" / "portal.example.toml").read_text()
