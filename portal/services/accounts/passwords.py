"""The staff password rule: long enough, and not one of the passwords people choose most.

A staff password wraps the private key that opens every case its holder was given (DESIGN.md
section 3). Whoever has a copy of the database can therefore guess it offline, at the cost of
one Argon2id derivation a guess (0.25 to 0.6 s with the production costs), and the second
factor does not protect that key. A guesser tries the common passwords first, so those are
refused whatever their length. They are also refused with a digit or symbol run before or
after them, with letters swapped for look-alike digits or symbols, with spaces or dashes
inside, or repeated.

The list is ``portal/data/common-passwords.txt``: the 30,000 passwords of the ``passwords``
frequency list of zxcvbn 4.5.0 (MIT licence; the list is the original zxcvbn's, Copyright (c)
2012-2016 Dan Wheeler and Dropbox, Inc., ported by Daniel Wolf), most common first, in lower
case. ``python -m portal.services.accounts.passwords`` writes it again from the installed zxcvbn (a
test extra, not needed at run time); tests/services/accounts/test_passwords.py checks that the
shipped file is what the pinned zxcvbn gives.
"""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

from portal.errors import InvalidInput
from portal.i18n.wording import N_
from portal.settings import Settings

LIST_PATH = Path(__file__).resolve().parents[2] / "data" / "common-passwords.txt"
#: The zxcvbn release the list was taken from (pinned in pyproject.toml's test extras).
SOURCE = "zxcvbn 4.5.0"

_HEADER = f"""\
# The 30,000 most common passwords, most common first, in lower case: the "passwords"
# frequency list of {SOURCE} (https://pypi.org/project/zxcvbn/), written by
# `python -m portal.services.accounts.passwords`. Staff passwords are checked against it
# (portal/services/accounts/passwords.py, docs/security-model.md).
#
# MIT License. Copyright (c) 2012-2016 Dan Wheeler and Dropbox, Inc. (zxcvbn);
# Copyright (c) 2016 Daniel Wolf (the Python port).
#
# Permission is hereby granted, free of charge, to any person obtaining a copy of this
# software and associated documentation files (the "Software"), to deal in the Software
# without restriction, including without limitation the rights to use, copy, modify, merge,
# publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
# to whom the Software is furnished to do so, subject to the following conditions:
#
# The above copyright notice and this permission notice shall be included in all copies or
# substantial portions of the Software.
#
# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
# INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
# PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
# FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
# OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
# DEALINGS IN THE SOFTWARE.
"""

#: What people put between words of a password.
_SEPARATORS = re.compile(r"[\s\-_.,+*/\\|:;~]+")
#: A run of digits and symbols at the start or the end ("password123!", "2024password").
_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_LETTER = re.compile(r"[^\W\d_]")
#: Look-alike digits and symbols for letters ("p@ssw0rd").
_LEET = str.maketrans(
    {"@": "a", "4": "a", "8": "b", "(": "c", "3": "e", "6": "g", "1": "i", "!": "i", "0": "o"}
    | {"$": "s", "5": "s", "7": "t", "+": "t"}
)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list (read once a process)."""
    lines = LIST_PATH.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def _repeats(text: str, known: frozenset[str]) -> bool:
    """``text`` is one common password said two or more times ("iloveyouiloveyou")."""
    size = len(text)
    return any(
        size % width == 0 and text[:width] in known and text == text[:width] * (size // width)
        for width in range(1, size // 2 + 1)
    )


def _forms(password: str) -> set[str]:
    """The ways a guesser's list would write ``password``: lower case, without separators,
    without a digit or symbol run at either end, with look-alikes read as letters."""
    lower = password.casefold()
    joined = _SEPARATORS.sub("", lower)
    forms = {lower, joined}
    for text in (lower, joined):
        core = _EDGES.sub("", text)
        forms |= {core, core.translate(_LEET), text.translate(_LEET)}
    return {form for form in forms if form}


def is_common(password: str) -> bool:
    """True when ``password`` is, or is built on, one of the common passwords: itself, with
    digits or symbols around it, in look-alikes, split by spaces or dashes, or repeated; or a
    common password of 6 or more characters followed by digits or symbols ("1234567890" then
    "12345"; shorter ones would refuse a random string of digits for its first four)."""
    known = common_passwords()
    forms = _forms(password)
    if any(form in known or _repeats(form, known) for form in forms):
        return True
    joined = _SEPARATORS.sub("", password.casefold())
    return any(
        joined[:end] in known and not _LETTER.search(joined[end:]) for end in range(6, len(joined))
    )


def check_new_password(settings: Settings, password: str, field: str) -> None:
    """Raise InvalidInput (on ``field``) for a password too short or too common."""
    if len(password) < settings.staff_password_min_chars:
        raise InvalidInput(
            field,
            N_(
                "The password needs at least %(count)d characters.",
                count=settings.staff_password_min_chars,
            ),
        )
    if is_common(password):
        raise InvalidInput(
            field,
            N_(
                "This password is one of the most common ones, or built on one (with digits,"
                " symbols or look-alike letters around or inside it, or repeated): it is among"
                " the first an attacker tries. Choose a few unrelated words instead."
            ),
        )


def build_list() -> str:
    """The list file's text from the installed zxcvbn (a test extra)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    words = FREQUENCY_LISTS["passwords"]
    if isinstance(words, str):
        words = words.split(",")
    return _HEADER + "".join(f"{word}\n" for word in words)


if __name__ == "__main__":  # pragma: no cover - run by hand when zxcvbn is updated
    LIST_PATH.parent.mkdir(exist_ok=True)
    LIST_PATH.write_text(build_list(), encoding="utf-8")
    sys.stdout.write(f"wrote {LIST_PATH} from {SOURCE}\n")
