"""Messages of the domain that people read, marked for translation without importing Flask.

A service words a refusal once, in English, and marks it::

    raise InvalidInput("days", N_("A token lives from 1 to %(longest)d days.", longest=365))

``N_`` is one of Babel's default extraction keywords, so the English text goes into the
catalogue. What it returns is that English text with the variables filled in, a plain ``str`` to
everything that does not care (the CLI, logs, tests), which also keeps its ``msgid`` and
``variables``. The web layer translates it into the reader's language when it shows it
(``portal.web.labels.translated``). Put a sentence in one message with placeholders, never
pieces joined together: other languages order the words differently.
"""

from __future__ import annotations


class Message(str):
    """English text that can still be translated: ``msgid % variables``."""

    __slots__ = ("msgid", "variables")
    msgid: str
    variables: dict[str, object]

    def __new__(cls, msgid: str, /, **variables: object) -> Message:
        message = super().__new__(cls, msgid % variables if variables else msgid)
        message.msgid = msgid
        message.variables = variables
        return message


def N_(msgid: str, /, **variables: object) -> Message:  # Babel extracts N_() by default
    """Mark ``msgid`` for extraction; the English text, translatable later."""
    return Message(msgid, **variables)
