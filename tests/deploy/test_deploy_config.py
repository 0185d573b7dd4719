"""The deployment examples (config/nginx.conf.example, config/portal.service.example) agree with
the portal: the proxy accepts every body the portal accepts, logs nothing on the reporter side
and no client address anywhere, and proxies to where the unit serves."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask

from portal.app import create_app
from portal.settings import PROJECT_ROOT, Settings

NGINX = PROJECT_ROOT / "config" / "nginx.conf.example"
UNIT = PROJECT_ROOT / "config" / "portal.service.example"
#: Blueprints (and Flask's static route) that reporters reach.
REPORTER_SIDE = ("reporter", "language", "static")
#: What must never appear in a log format: addresses and what identifies a browser.
IDENTIFYING = (
    "$remote_addr",
    "$binary_remote_addr",
    "$realip_remote_addr",
    "$http_x_forwarded_for",
    "$proxy_add_x_forwarded_for",
    "$http_user_agent",
    "$http_referer",
    "$http_accept_language",
    "$request ",  # the request line with its query string ($request_uri is caught below)
    "$request_uri",
    "$args",
    "$query_string",
)


@dataclass
class Block:
    """One nginx directive: its name, arguments and, for a block, its children."""

    name: str
    args: list[str]
    children: list[Block] = field(default_factory=list)

    def all(self, name: str) -> list[Block]:
        return [child for child in self.children if child.name == name]

    def one(self, name: str) -> Block | None:
        found = self.all(name)
        assert len(found) <= 1, f"{name} set twice in {self.name} {self.args}"
        return found[0] if found else None


def _tokens(text: str) -> list[str]:
    """Quoted strings, braces, semicolons and words; comments (outside quotes) dropped."""
    found = re.findall(r"'[^']*'|\"[^\"]*\"|#[^\n]*|[{};]|[^\s{};'\"#]+", text)
    return [token for token in found if not token.startswith("#")]


def parse_nginx(text: str) -> Block:
    root = Block("main", [])
    stack = [root]
    words: list[str] = []
    for token in _tokens(text):
        if token == ";":
            stack[-1].children.append(Block(words[0], words[1:]))
            words = []
        elif token == "{":
            block = Block(words[0], words[1:])
            stack[-1].children.append(block)
            stack.append(block)
            words = []
        elif token == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        else:
            words.append(token.strip("'\"") if token[0] in "'\"" else token)
    assert len(stack) == 1 and not words, "unbalanced braces"
    return root


def _servers(config: Block) -> tuple[Block, Block]:
    """(the plain-HTTP server, the TLS server)."""
    servers = config.all("server")
    tls = [s for s in servers if any("ssl" in d.args for d in s.all("listen"))]
    plain = [s for s in servers if all(s is not t for t in tls)]
    assert len(tls) == 1 and len(plain) == 1
    return plain[0], tls[0]


def _location_for(server: Block, path: str) -> Block:
    """The location nginx picks for ``path``: an exact match, else the longest prefix (the
    example uses no regular-expression locations)."""
    locations = server.all("location")
    assert all(loc.args[0] in ("=", "^~") or len(loc.args) == 1 for loc in locations)
    for loc in locations:
        if loc.args[0] == "=" and loc.args[1] == path:
            return loc
    prefixes = [loc for loc in locations if loc.args[0] != "=" and path.startswith(loc.args[-1])]
    assert prefixes, f"no location serves {path}"
    return max(prefixes, key=lambda loc: len(loc.args[-1]))


def _access_log(server: Block, location: Block) -> list[str]:
    """The access_log in force in a location (its own, else the server's; nginx's default,
    the combined format with $remote_addr, if neither sets one)."""
    own = location.all("access_log") or server.all("access_log")
    if not own:
        return ["logs/access.log", "combined"]
    assert len(own) == 1, "one access_log per context keeps the example readable"
    return own[0].args


def _size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    suffix = value[-1].lower()
    return int(value[:-1]) * units[suffix] if suffix in units else int(value)


@pytest.fixture(scope="module")
def nginx() -> Block:
    return parse_nginx(NGINX.read_text())


@pytest.fixture(scope="module")
def default_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return create_app(Settings(instance_path=tmp_path_factory.mktemp("instance")))


def _sample_path(rule: str) -> str:
    return re.sub(r"<[^>]+>", "x", rule)


def test_nginx_accepts_every_body_the_portal_accepts(nginx: Block, default_app: Flask) -> None:
    _, tls = _servers(nginx)
    limit = tls.one("client_max_body_size")
    assert limit is not None
    cap = default_app.config["MAX_CONTENT_LENGTH"]
    assert cap == Settings().max_request_bytes
    assert _size(limit.args[0]) >= cap
    # The whole body stays in memory: a reporter's upload never lands in a temporary file.
    buffer = tls.one("client_body_buffer_size")
    assert buffer is not None and _size(buffer.args[0]) >= _size(limit.args[0])
    answers_to_disk = tls.one("proxy_max_temp_file_size")
    assert answers_to_disk is not None and answers_to_disk.args == ["0"]


def test_reporter_paths_have_no_access_log(nginx: Block, default_app: Flask) -> None:
    plain, tls = _servers(nginx)
    reporter_rules = [
        rule.rule
        for rule in default_app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in REPORTER_SIDE
    ]
    assert {"/", "/report", "/followup", "/leave", "/static/<path:filename>"} <= set(reporter_rules)
    for rule in reporter_rules:
        for server in (plain, tls):
            path = _sample_path(rule)
            location = _location_for(server, path)
            assert _access_log(server, location) == ["off"], f"{path} is logged"
    # An unknown path (a mistyped address, a probe) is not logged either.
    assert _access_log(tls, _location_for(tls, "/robots.txt")) == ["off"]


def test_staff_logs_carry_no_address(nginx: Block, default_app: Flask) -> None:
    formats = {f.args[0]: " ".join(f.args[1:]) + " " for f in nginx.all("log_format")}
    for name, text in formats.items():
        for variable in IDENTIFYING:
            assert variable not in text, f"log_format {name} uses {variable.strip()}"
    _, tls = _servers(nginx)
    staff_rules = [
        _sample_path(rule.rule)
        for rule in default_app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in ("staff", "insights", "api")
    ]
    assert staff_rules
    for path in staff_rules:
        log = _access_log(tls, _location_for(tls, path))
        # Logged with one of the example's own formats, never nginx's default "combined".
        assert log == ["off"] or (len(log) == 2 and log[1] in formats), (path, log)
    # nginx's error log lines name the client: the portal's servers write none.
    for server in _servers(nginx):
        error_log = server.one("error_log")
        assert error_log is not None and error_log.args[0] == "/dev/null"


def test_proxy_headers_say_https_and_pass_no_address(nginx: Block) -> None:
    plain, tls = _servers(nginx)
    headers = {
        h.args[0].lower(): h.args[1] if len(h.args) > 1 else "" for h in tls.all("proxy_set_header")
    }
    assert headers["x-forwarded-proto"] == "$scheme"
    # The address for the rate limits: nginx's own view of the client, replacing whatever the
    # client sent (never $proxy_add_x_forwarded_for, which keeps the client's own entries).
    assert headers["x-forwarded-for"] == "$remote_addr"
    for dropped in (
        "x-real-ip",
        "forwarded",
        "x-forwarded-ssl",
        "x-forwarded-protocol",
    ):
        assert headers[dropped] == "", dropped
    hsts = [h.args for h in tls.all("add_header") if h.args[0] == "Strict-Transport-Security"]
    assert hsts == [["Strict-Transport-Security", "max-age=31536000", "always"]]
    # Plain HTTP only redirects, to HTTPS.
    assert not any(loc.one("proxy_pass") for loc in plain.all("location"))
    (redirect,) = [r for loc in plain.all("location") for r in loc.all("return")]
    assert redirect.args[0] == "301" and redirect.args[1].startswith("https://")
    assert tls.one("proxy_cache") is not None and tls.one("proxy_cache").args == ["off"]  # type: ignore[union-attr]


def test_the_unit_serves_where_nginx_proxies(nginx: Block) -> None:
    (upstream,) = nginx.all("upstream")
    (server,) = upstream.all("server")
    unit = UNIT.read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.+)$", unit, flags=re.MULTILINE)
    argv = shlex.split(exec_start)
    assert argv[1:3] == ["serve", "--host"] and Path(argv[0]).name == "portal"
    host, port = argv[3], argv[argv.index("--port") + 1]
    assert server.args[0] == f"{host}:{port}"
    assert host in ("127.0.0.1", "::1")  # gunicorn's forwarded_allow_ips default trusts it
    for location in _servers(nginx)[1].all("location"):
        assert location.one("proxy_pass") is not None
        assert location.one("proxy_pass").args == [f"http://{upstream.args[0]}"]  # type: ignore[union-attr]
    assert re.search(r"^UMask=0077$", unit, flags=re.MULTILINE)
    # nginx appends one X-Forwarded-For entry, so the portal trusts exactly one hop.
    assert re.search(r"^Environment=PORTAL_PROXY_HOPS=1$", unit, flags=re.MULTILINE)
    assert re.search(r"^Environment=PORTAL_CONFIG=", unit, flags=re.MULTILINE)


def test_the_parser_sees_what_nginx_sees() -> None:
    """The helpers above are only as good as the parser: check it on a known snippet."""
    config = parse_nginx(
        "log_format f '$time_iso8601 $status';  # comment\n"
        "server { listen 443 ssl; access_log off;\n"
        "  location = /a { access_log /x f; }\n"
        "  location /a { }\n"
        "  location /ab/ { access_log /y f; } }\n"
        "server { listen 80; }"
    )
    _, tls = _servers(config)
    assert config.all("log_format")[0].args == ["f", "$time_iso8601 $status"]
    assert _access_log(tls, _location_for(tls, "/a")) == ["/x", "f"]
    assert _access_log(tls, _location_for(tls, "/a/b")) == ["off"]
    assert _access_log(tls, _location_for(tls, "/ab/c")) == ["/y", "f"]
    with pytest.raises(AssertionError):
        parse_nginx("server { listen 80;")
