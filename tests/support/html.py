"""Reading rendered pages: what a textarea shows, the errors next to a field, a form's notices."""

from __future__ import annotations

import html
import re


def textarea(page: str, name: str) -> str:
    """What a textarea shows, unescaped (WTForms writes a newline after the opening tag)."""
    match = re.search(rf'<textarea[^>]*name="{name}"[^>]*>\r?\n?(.*?)</textarea>', page, re.S)
    assert match, f"page has no textarea {name!r}"
    return html.unescape(match.group(1))


def field_errors(page: str, field_id: str) -> list[str]:
    """The messages rendered next to one field (the ``errors`` macro)."""
    match = re.search(rf'<ul class="field-errors" id="{field_id}-error">(.*?)</ul>', page, re.S)
    if not match:
        return []
    return [html.unescape(m).strip() for m in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


def form_problems(page: str) -> str:
    """The text of the notices at the top of a form (expired form, nothing sent, ...)."""
    notices = re.findall(r'<div class="notice notice-error" role="alert">(.*?)</div>', page, re.S)
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", n) for n in notices))
