"""`portal serve`: what it hands gunicorn (no access log; workers and threads as asked)."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from portal.app import create_app
from portal.runtime import serving, slots
from tests.support import served
from tests.support.factories import cheap_settings


def _config(options: dict[str, Any]) -> Config:
    """The options as gunicorn reads them: an unknown name or a bad value raises here."""
    config = Config()
    for key, value in options.items():
        config.set(key, value)
    return config


def test_threads_above_one_make_threaded_workers(tmp_path: Path) -> None:
    settings = cheap_settings(tmp_path)
    config = _config(
        serving.gunicorn_options(settings, host="127.0.0.1", port=8000, workers=3, threads=4)
    )
    assert config.workers == 3 and config.threads == 4
    assert config.worker_class is ThreadWorker
    assert config.accesslog is None  # no access log: it would record client addresses
    assert config.bind == ["127.0.0.1:8000"]
    assert config.timeout == slots.WORKER_TIMEOUT_SECONDS
    # A proxy on this host may mark requests as HTTPS; nobody else may.
    assert config.forwarded_allow_ips == ["127.0.0.1", "::1"]


def test_one_thread_keeps_sync_workers(tmp_path: Path) -> None:
    config = _config(
        serving.gunicorn_options(
            cheap_settings(tmp_path), host="127.0.0.1", port=8000, workers=2, threads=1
        )
    )
    assert config.worker_class is SyncWorker


def test_serve_passes_workers_and_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr(
        serving, "run_gunicorn", lambda settings, app_factory, **kw: seen.update(kw)
    )
    app = create_app(cheap_settings(tmp_path / "instance"))
    result = app.test_cli_runner().invoke(
        args=["serve", "--port", "8123", "--workers", "3", "--threads", "4"]
    )
    assert result.exit_code == 0, result.output
    assert seen == {"host": "127.0.0.1", "port": 8123, "workers": 3, "threads": 4}
    refused = app.test_cli_runner().invoke(args=["serve", "--threads", "0"])
    assert refused.exit_code != 0 and "--threads" in refused.output


def _raw(port: int, request: bytes, source: str) -> tuple[int, bytes]:
    """Send ``request`` from the loopback address ``source`` over a raw socket; the client's
    (address, port) and whatever the server answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.bind((source, 0))
        sock.connect((served.HOST, port))
        client_port: int = sock.getsockname()[1]
        sock.sendall(request)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    return client_port, answer


#: Requests gunicorn refuses before the portal sees them, each carrying a marker in its request
#: line (path and query string) or header that must not reach the log.
MALFORMED_REQUESTS = {
    "malformed request line": b"GET /mk-line-path?mk-line-query=1 HTTP/1.1 x\r\nHost: x\r\n\r\n",
    "bad method": b"G\x01T /mk-method-path?mk-method-query=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad HTTP version": b"GET /mk-version-path?mk-version-query=1 HTTP/7.7\r\nHost: x\r\n\r\n",
    "over-long URL": (
        b"GET /mk-long-path" + b"a" * 9000 + b"?mk-long-query=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "bad header name": (
        b"GET /mk-header-path?mk-header-query=1 HTTP/1.1\r\nHost: x\r\n"
        b"mk-bad header: mk-header-value\r\n\r\n"
    ),
    "header too large": (
        b"GET /mk-big-path?mk-big-query=1 HTTP/1.1\r\nHost: x\r\nX-mk-big: "
        + b"b" * 20000
        + b"\r\n\r\n"
    ),
    "bad chunked body": (
        b"POST /mk-chunk-path?mk-chunk-query=1 HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nmk-zz\r\n"
    ),
}


def test_a_real_server_logs_no_client_address_nor_request_line(tmp_path: Path) -> None:
    """Issue 13, finding 4: gunicorn's error log wrote ``Invalid request from ip=...`` and the
    raw request line with its query string. Against a real ``portal serve`` (debug level, so
    that every message gunicorn has is written), from a loopback address of its own
    (127.0.0.2: the server's own 127.0.0.1 may appear in "Listening at")."""
    source = "127.0.0.2"
    client_ports = []
    answers = {}
    with served.portal_serve(tmp_path) as server:
        for kind, request in MALFORMED_REQUESTS.items():
            port, answer = _raw(server.port, request, source)
            client_ports.append(port)
            answers[kind] = answer.split(b"\r\n", 1)[0]
        time.sleep(0.5)
    written = server.text()

    # Each was refused (gunicorn answered 4xx), and the log says a request was refused.
    assert all(line.split()[1].startswith(b"4") for line in answers.values()), answers
    assert source not in written, written
    assert "ip=" not in written
    for port in client_ports:
        assert not re.search(rf"\b{port}\b", written), f"client port {port} in:\n{written}"
    leaked = sorted(set(re.findall(r"mk-[a-z-]+", written)))
    assert leaked == [], written
    for _kind, request in MALFORMED_REQUESTS.items():
        line = request.split(b"\r\n", 1)[0].decode("latin-1")
        assert line not in written and line.split(" ")[1][:20] not in written
    assert serving.NEUTRAL_INVALID_REQUEST in written, written


def test_the_logger_class_masks_addresses_and_request_errors_in_any_message() -> None:
    """The class, not only today's messages: a message of the request-error family is replaced
    whole, an address anywhere else is masked, a traceback loses the exception's text, and the
    access log writes nothing even when configured."""
    config = Config()
    config.set("bind", ["127.0.0.1:8000"])
    config.set("errorlog", "-")
    config.set("accesslog", "-")
    what_the_client_sent = "GET /mk-traceback?q=2"
    logger = serving.PrivateLogger(config)
    stream = io.StringIO()
    for handler in logger.error_log.handlers + logger.access_log.handlers:
        handler.setStream(stream)
    logger.warning("Invalid request from ip=203.0.113.7: Invalid HTTP request line: 'GET /?q=1'")
    logger.info("Some future message about 198.51.100.4:51234 and [2001:db8::1]:443")
    logger.info("Listening at: http://127.0.0.1:8000 (1)")
    try:
        raise ValueError(what_the_client_sent)  # a traceback shows this source line
    except ValueError:
        logger.exception("Error handling request GET /mk-uri?q=3")
    logging.getLogger("gunicorn.error").warning("Request Line is too large (9000 > 4094)")
    logger.access(None, None, {"REMOTE_ADDR": "192.0.2.1"}, dt.timedelta(0))
    written = stream.getvalue()

    for secret in ("203.0.113.7", "198.51.100.4", "51234", "2001:db8", "mk-", "q=", "192.0.2.1"):
        assert secret not in written, (secret, written)
    assert serving.NEUTRAL_INVALID_REQUEST in written
    assert serving.NEUTRAL_REQUEST_ERROR in written, written
    assert "ValueError (message withheld)" in written, written
    assert "Listening at: http://127.0.0.1:8000" in written  # the server's own address stays
    assert "9000" not in written


def test_the_options_turn_gunicorns_control_socket_off(tmp_path: Path) -> None:
    config = _config(
        serving.gunicorn_options(
            cheap_settings(tmp_path), host="127.0.0.1", port=8000, workers=2, threads=1
        )
    )
    assert config.control_socket_disable is True


def _unix_sockets_of(pid: int) -> set[str]:
    """The paths of the Unix sockets process ``pid`` holds open (from /proc: its descriptors'
    inodes, looked up in the kernel's table of Unix sockets)."""
    inodes = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = descriptor.readlink().name
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    paths = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes and not fields[7].startswith("@"):
            paths.add(fields[7])
    return paths


@pytest.mark.skipif(not Path("/proc/net/unix").exists(), reason="needs Linux's /proc")
def test_two_servers_on_one_host_share_no_control_socket(tmp_path: Path) -> None:
    """Issue 14: gunicorn (25.1 and later) opens a control socket at a fixed path in the home
    folder ($HOME/.gunicorn/gunicorn.ctl, or $XDG_RUNTIME_DIR/gunicorn.ctl). The documented
    layout runs two `portal serve` on one host as one user: the second took the first's socket
    over, so `gunicornc` reached the wrong server and stopping either removed the other's. Two
    real servers with the same home and runtime folder: neither writes there, and no Unix
    socket path is held by both."""
    home, runtime = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime.mkdir(mode=0o700)
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    (tmp_path / "reporters").mkdir()
    (tmp_path / "staff").mkdir()
    with (
        served.portal_serve(tmp_path / "reporters", env=env) as reporters,
        served.portal_serve(tmp_path / "staff", env=env) as staff_side,
    ):
        # gunicorn starts its control server once the first workers are up.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(
            "Control socket" in server.text() for server in (reporters, staff_side)
        ):
            time.sleep(0.2)
        held = [_unix_sockets_of(server.process.pid) for server in (reporters, staff_side)]
        written = sorted(str(p) for folder in (home, runtime) for p in folder.rglob("*"))
    assert held[0].isdisjoint(held[1]), held
    assert written == [], written
    for paths in held:
        assert not [p for p in paths if p.startswith((str(home), str(runtime)))], paths
