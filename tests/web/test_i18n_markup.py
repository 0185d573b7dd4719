"""Every user-visible string is marked for translation.

The portal ships English and Simplified Chinese catalogues; a string that is not marked is never
extracted and so stays English on a Chinese page. These checks look at the source rather than at
rendered pages, so they cover every branch of every template without having to reach it.

Templates: the Jinja lexer separates the literal text of a template (``data`` tokens) from its
``{{ }}``/``{% %}`` parts. Each ``{{ }}``/``{% %}`` is replaced by a placeholder character and
the result is read by an HTML parser: any letter left in a text node, or in an attribute a person
reads or hears (title, aria-label, alt, placeholder, the value of a button), was written in the
template as a literal instead of through ``_()``.

Python: a flash message or a form label given as a bare string literal cannot be translated.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import flask_babel
import jinja2
import pytest

from portal.i18n.wording import N_
from portal.settings import PROJECT_ROOT
from portal.web import labels

PORTAL = PROJECT_ROOT / "portal"
TEMPLATES = PORTAL / "templates"

#: Stands for one ``{{ }}`` or ``{% %}``: neither a letter nor anything HTML gives a meaning to.
PLACEHOLDER = "\u2022"
LETTERS = re.compile(r"[A-Za-z]")
#: Attributes whose value is shown or read out to the person using the page.
READ_ATTRIBUTES = frozenset({"title", "aria-label", "aria-description", "alt", "placeholder"})
BUTTON_INPUT_TYPES = frozenset({"submit", "button", "reset"})

#: Literal text that is deliberately the same in every language, as (template, text) pairs.
#: Keep it short and say why for each entry.
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        # The body's class name, put into class="..." by base.html: markup, not text.
        ("staff/base.html", "staff"),
        # The ``described`` macro writes an element id ("<field>-error") for aria-describedby.
        ("macros.html", "-error"),
    }
)


@dataclass(frozen=True)
class Finding:
    name: str
    line: int
    where: str  # "text" or the attribute name
    text: str

    def __str__(self) -> str:
        return f"{self.name}:{self.line}: unmarked {self.where}: {self.text!r}"


def _flatten(env: jinja2.Environment, source: str, name: str) -> str:
    """The template's literal text with each ``{{ }}``/``{% %}`` as one placeholder, on the same
    lines as in the source. Text inside ``{% trans %}`` is marked and so dropped."""
    out: list[str] = []
    line = 1
    in_trans = False
    previous_block_name = False
    in_tag = False
    for lineno, kind, value in env.lex(source, name):
        if lineno > line:
            out.append("\n" * (lineno - line))
            line = lineno
        if kind == "data":
            if not in_trans:
                out.append(value)
            else:  # keep the line count right without keeping the text
                out.append("\n" * value.count("\n"))
            line += value.count("\n")
            continue
        if kind in ("block_begin", "variable_begin"):
            in_tag = True
            previous_block_name = kind == "block_begin"
            out.append(PLACEHOLDER)
        elif kind in ("block_end", "variable_end"):
            in_tag = False
        elif in_tag and previous_block_name and kind == "name":
            if value == "trans":
                in_trans = True
            elif value == "endtrans":
                in_trans = False
            previous_block_name = False
        elif kind != "whitespace":  # env.lex() keeps the whitespace between tokens
            previous_block_name = False
        # Tokens inside {{ }} / {% %} may span lines (a multi-line call): the next token's line
        # number moves ``line`` on, above.
    return "".join(out)


class _Reader(HTMLParser):
    def __init__(self, name: str) -> None:
        super().__init__(convert_charrefs=True)
        self.name = name
        self.findings: list[Finding] = []
        self._skip_depth = 0  # inside <script>/<style>

    def _report(self, where: str, text: str) -> None:
        # The parser's position is where the text node starts, which may be lines before its
        # first word.
        first = LETTERS.search(text)
        line = self.getpos()[0] + text[: first.start() if first else 0].count("\n")
        text = " ".join(text.replace(PLACEHOLDER, " ").split())
        if LETTERS.search(text) and (self.name, text) not in ALLOWED:
            self.findings.append(Finding(self.name, line, where, text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip_depth += 1
        values = {key: value or "" for key, value in attrs}
        for key, value in values.items():
            if key in READ_ATTRIBUTES:
                self._report(key, value)
        # An <input type=submit> shows its value as the button's label. A <button>'s value is
        # not shown (its content is): it is the form data the view dispatches on.
        button_input = tag == "input" and values.get("type", "").lower() in BUTTON_INPUT_TYPES
        if button_input and "value" in values:
            self._report("value", values["value"])
        if tag in ("option", "optgroup") and "label" in values:
            self._report("label", values["label"])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("script", "style"):
            self._skip_depth -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip_depth:
            self._skip_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self._report("text", data)


def unmarked_template_text(source: str, name: str = "<string>") -> list[Finding]:
    """Literal, visible text of a template that does not go through ``_()``."""
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=True)  # lexed only
    reader = _Reader(name)
    reader.feed(_flatten(env, source, name))
    reader.close()
    return reader.findings


def _templates() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def test_there_are_templates_to_check() -> None:
    assert len(_templates()) > 30


@pytest.mark.parametrize(
    "path", _templates(), ids=lambda p: str(p.relative_to(TEMPLATES)).replace("/", ":")
)
def test_template_has_no_unmarked_text(path: Path) -> None:
    name = str(path.relative_to(TEMPLATES))
    findings = unmarked_template_text(path.read_text(encoding="utf-8"), name)

    assert not findings, "\n".join(map(str, findings))


# -- the checker itself: it must catch what it is meant to catch --------------------------------


def test_checker_reports_unmarked_text_with_its_line() -> None:
    source = '<p>{{ _("Marked") }}</p>\n<p>\n  Not marked {{ count }} times\n</p>\n'

    findings = unmarked_template_text(source, "planted.html")

    assert [(f.name, f.line, f.where, f.text) for f in findings] == [
        ("planted.html", 3, "text", "Not marked times")
    ]


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ('<a href="{{ url }}" title="Open the case">{{ _("Open") }}</a>', "title"),
        ('<nav aria-label="Main"></nav>', "aria-label"),
        ('<img src="{{ src }}" alt="A QR code">', "alt"),
        ('<input name="q" placeholder="Search">', "placeholder"),
        ('<input type="submit" value="Send">', "value"),
        ('<input type="button" value="{{ _(\'Close\') }} all">', "value"),
        ('<button type="submit" name="do" value="close">Close</button>', "text"),
        ("<title>{% block title %}{% endblock %} · Portal</title>", "text"),
        ('{% if x %}<p class="a">{% else %}<p>{% endif %}Half {{ _("marked") }}</p>', "text"),
    ],
)
def test_checker_reports_unmarked_attributes_and_fragments(source: str, where: str) -> None:
    findings = unmarked_template_text(source)

    assert [f.where for f in findings] == [where]


@pytest.mark.parametrize(
    "source",
    [
        '<p>{{ _("Sent on %(day)s.", day=when) }}</p>',
        '<a title="{{ _(\'Open\') }}" href="{{ url }}">&rarr; {{ n }} · 3 %</a>',
        '<input type="hidden" name="action" value="close">',
        '<button type="submit" name="action" value="close">{{ _("Close") }}</button>',
        '<input type="text" name="q" value="{{ q }}" class="wide">',
        "<!-- Developer note: not shown -->{# nor this #}",
        "{% trans %}Marked with a trans block{% endtrans %}",
        '<div class="field" id="x-hint" data-role="thing"></div>',
    ],
)
def test_checker_accepts_marked_and_invisible_text(source: str) -> None:
    assert unmarked_template_text(source) == []


# -- Python: flash messages and form labels -----------------------------------------------------


def _python_files(under: Path) -> list[Path]:
    return sorted(under.rglob("*.py"))


def _is_literal_text(node: ast.expr) -> bool:
    """A string written out in the source, not passed through a translation function."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):  # "..." + x, "..." % x
        return _is_literal_text(node.left) or _is_literal_text(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr == "format" and _is_literal_text(node.func.value)
    return False


def _callee(node: ast.Call) -> str:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return ""


TRANSLATING = frozenset({"_", "_l", "gettext", "lazy_gettext", "ngettext", "lazy_ngettext"})


def unmarked_flashes(source: str, name: str = "<string>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        flash = isinstance(node, ast.Call) and _callee(node) == "flash" and node.args
        if flash and isinstance(node, ast.Call) and _is_literal_text(node.args[0]):
            found.append(f"{name}:{node.lineno}: flash() of an unmarked string")
    return found


#: WTForms validators whose first positional argument is the message.
MESSAGE_FIRST_VALIDATORS = frozenset({"DataRequired", "InputRequired", "Email", "Optional"})


def unmarked_field_texts(source: str, name: str = "<string>") -> list[str]:
    """Labels, descriptions and validator messages in a WTForms module that are not lazy
    translations (a form class is built at import time, outside any request and locale)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        callee = _callee(node)
        texts: list[ast.expr] = []
        if callee.endswith("Field"):
            texts += node.args[:1]
            texts += [k.value for k in node.keywords if k.arg in ("label", "description")]
        if callee in MESSAGE_FIRST_VALIDATORS:
            texts += node.args[:1]
        texts += [k.value for k in node.keywords if k.arg == "message"]
        for text in texts:
            if isinstance(text, ast.Constant) and text.value in (None, ""):
                continue  # no label at all, nothing to translate
            lazy = isinstance(text, ast.Call) and _callee(text) in ("_l", "lazy_gettext")
            if not lazy and (_is_literal_text(text) or isinstance(text, ast.Call)):
                found.append(f"{name}:{text.lineno}: {callee}() text is not lazy_gettext")
    return found


def test_no_flash_of_an_unmarked_string() -> None:
    found = [
        finding
        for path in _python_files(PORTAL)
        for finding in unmarked_flashes(path.read_text(encoding="utf-8"), str(path))
    ]

    assert not found, "\n".join(found)


def test_form_labels_and_messages_are_lazy_translations() -> None:
    found = [
        finding
        for path in _python_files(PORTAL / "web")
        if path.name == "forms.py"
        for finding in unmarked_field_texts(path.read_text(encoding="utf-8"), str(path))
    ]

    assert not found, "\n".join(found)


def test_python_checks_catch_planted_strings() -> None:
    assert unmarked_flashes('flash("Saved.", "ok")\nflash(_("Saved."), "ok")\n') == [
        "<string>:1: flash() of an unmarked string"
    ]
    assert unmarked_flashes('flash(f"Saved {n}.")\nflash("Saved " + n)\n') != []
    form = (
        'a = StringField("Name", validators=[Length(max=3, message="Too long")])\n'
        'b = StringField(_l("Name"), validators=[Length(max=3, message=_l("Too long"))])\n'
        'c = BooleanField(gettext("Name"))\n'
        'd = EmailField(_l("E-mail"), validators=[DataRequired("Give one.")])\n'
    )
    assert len(unmarked_field_texts(form)) == 4


# -- services' messages: marked without Flask, translated where they are shown -----------------


def test_a_service_message_is_its_english_text_and_keeps_what_translating_needs() -> None:
    message = N_("A token lives from 1 to %(longest)d days.", longest=365)

    assert message == "A token lives from 1 to 365 days."
    assert (message.msgid, message.variables) == (
        "A token lives from 1 to %(longest)d days.",
        {"longest": 365},
    )
    assert copy.copy(message).msgid == message.msgid


def test_the_web_translates_a_service_message_and_leaves_other_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def marking(msgid: str, **variables: object) -> str:
        return "«" + msgid % variables + "»"

    monkeypatch.setattr(labels, "gettext", marking)

    assert labels.translated(N_("At most %(n)d tags.", n=5)) == "«At most 5 tags.»"
    assert labels.translated("Typed by a person") == "Typed by a person"


def test_flask_babel_gives_english_outside_any_app() -> None:
    """The CLI and tests call code that translates with no request (and possibly no app)."""
    assert flask_babel.gettext("Sent on %(day)s.", day="2026-01-02") == "Sent on 2026-01-02."
    assert flask_babel.ngettext("%(num)d case", "%(num)d cases", 2) == "2 cases"
    assert str(flask_babel.lazy_gettext("Log in")) == "Log in"


#: Domain errors whose message the web shows (argument index of the message).
SHOWN_ERRORS = {"InvalidInput": 1, "LastAdmin": 1, "InvalidTransition": 0}


#: policy.update's "unknown policy field" is a programming error, never the answer to a form.
TECHNICAL_SERVICE_MESSAGES = frozenset({"unknown policy field"})


def unmarked_service_messages(source: str, name: str = "<string>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _callee(node) in SHOWN_ERRORS:
            index = SHOWN_ERRORS[_callee(node)]
            message = node.args[index] if len(node.args) > index else None
            technical = isinstance(message, ast.Constant) and (
                message.value in TECHNICAL_SERVICE_MESSAGES
            )
            if message is not None and _is_literal_text(message) and not technical:
                found.append(f"{name}:{node.lineno}: {_callee(node)} message is not N_()")
    return found


def test_service_messages_shown_on_pages_are_marked() -> None:
    found = [
        finding
        for path in _python_files(PORTAL / "services")
        for finding in unmarked_service_messages(path.read_text(encoding="utf-8"), str(path))
    ]

    assert not found, "\n".join(found)
    assert unmarked_service_messages('raise InvalidInput("f", f"At most {n}.")') != []
    assert unmarked_service_messages('raise InvalidInput("f", N_("At most %(n)d.", n=n))') == []
