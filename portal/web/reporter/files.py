"""What the reporter is told about the files they chose: the limits, and why a file was
refused. The name shown is the one the reporter's own browser sent, back to that browser only;
it is never logged or stored."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.services.attachments.sanitize.core import CleanFailure, TypeRefusal
from portal.services.attachments.store import AttachmentsRefused, Rules
from portal.web.labels import file_size

#: Characters of a refused file's name repeated in the message.
NAME_SHOWN_MAX = 80

REASONS = {
    CleanFailure.EMPTY.value: _l("the file is empty."),
    CleanFailure.CORRUPT.value: _l(
        "it could not be read as the kind of file its name says; it may be damaged."
    ),
    CleanFailure.ENCRYPTED.value: _l(
        "it is protected by a password, so its hidden data cannot be removed."
    ),
    CleanFailure.TOO_MANY_PIXELS.value: _l("the picture is too large to be cleaned."),
    CleanFailure.ANIMATED.value: _l("animated pictures cannot be cleaned."),
    CleanFailure.ARCHIVE_TOO_LARGE.value: _l(
        "the document has too many parts, or unpacks to too much, to be cleaned."
    ),
    CleanFailure.NOT_UTF8.value: _l("a text file must be saved as UTF-8."),
    TypeRefusal.UNSUPPORTED.value: _l("this kind of file is not accepted."),
    TypeRefusal.NOT_ENABLED.value: _l("this kind of file is not accepted here."),
    TypeRefusal.MISMATCH.value: _l("its name or type does not match what is inside it."),
    TypeRefusal.MACROS.value: _l("documents with macros are not accepted."),
    TypeRefusal.LEGACY_OFFICE.value: _l(
        "old Office files (.doc, .xls, .ppt) and password-protected Office files cannot be "
        "cleaned. Save it as .docx, .xlsx, .pptx or PDF and choose it again."
    ),
}


def _shown(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base if len(base) <= NAME_SHOWN_MAX else base[: NAME_SHOWN_MAX - 1] + "…"


def refusal_messages(error: AttachmentsRefused, rules: Rules) -> list[str]:
    if error.too_many is not None:
        return [
            _(
                "You chose %(count)d files; at most %(limit)d can be sent at once.",
                count=error.too_many,
                limit=rules.max_count,
            )
        ]
    messages = []
    for refused in error.refused:
        if refused.reason == CleanFailure.TOO_LARGE.value:
            reason = _("it is larger than %(limit)s.", limit=file_size(rules.max_bytes))
        else:
            reason = str(REASONS.get(refused.reason, REASONS[TypeRefusal.UNSUPPORTED.value]))
        message = _(
            "“%(name)s” was not accepted: %(reason)s", name=_shown(refused.filename), reason=reason
        )
        if refused.may_keep_as_is:
            message += " " + _(
                "You may send it as it is: tick the box below the file field and choose the "
                "file again."
            )
        messages.append(message)
    return messages
