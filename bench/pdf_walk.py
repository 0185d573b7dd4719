#!/usr/bin/env python3
"""How long PDF cleaning takes on files of many small objects (issue 13, finding 3).

The cleaner looks at every object of a PDF for actions, scripts and embedded files
(``portal/services/attachments/sanitize/pdf.py``). The attachments benchmark's PDF has few, large
objects; a 10 MiB file can instead hold a million small ones, which is where a walk in Python costs.
Each file is made in memory, under the 10 MiB upload limit, and cleaned ``--rounds`` times
with ``sanitize.clean_attachment``; the fastest round is printed (the machine is shared).

    .venv/bin/python bench/pdf_walk.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

import pikepdf

from portal.services.attachments import sanitize

_HEAD = [
    b"<< /Type /Catalog /Pages 2 0 R /X 4 0 R >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
]


def _raw(*bodies: bytes) -> bytes:
    """A file written by hand (qpdf rebuilds the missing cross-reference table)."""
    parts = [b"%PDF-1.7\n"]
    parts += [b"%d 0 obj\n%s\nendobj\n" % (n, body) for n, body in enumerate(bodies, 1)]
    return b"".join([*parts, b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"])


def _outline(items: int) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    root = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Outlines))
    previous = None
    for _ in range(items):
        item = pdf.make_indirect(pikepdf.Dictionary(Title="t", Parent=root))
        if previous is None:
            root.First = item
        else:
            previous.Next = item
        previous = item
    root.Last = previous
    pdf.Root.Outlines = root
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


SAMPLES: dict[str, Callable[[], bytes]] = {
    "one array of 4.9 million integers": lambda: _raw(*_HEAD, b"[" + b"0 " * 4_900_000 + b"]"),
    "110,000 indirect bookmarks in one chain": lambda: _outline(110_000),
    "900,000 direct small dictionaries in one array": lambda: _raw(
        *_HEAD, b"[" + b"<</A 1>>" * 900_000 + b"]"
    ),
    "550,000 direct JavaScript actions in one array (all cut)": lambda: _raw(
        *_HEAD, b"[" + b"<</S/JavaScript>>" * 550_000 + b"]"
    ),
    # One dictionary to clean among 4 million numbers: the array is walked in Python.
    "4 million integers and one dictionary with /AA in one array": lambda: _raw(
        *_HEAD, b"[" + b"0 " * 4_000_000 + b"<</AA 1>>]"
    ),
    # The same inside nested arrays: the serialisation budget bounds the cost of deciding
    # which level to walk (without it, 100 levels took 103 s).
    "the same inside 100 nested arrays": lambda: _raw(
        *_HEAD, b"[" * 100 + b"0 " * 4_000_000 + b"<</AA 1>>" + b"]" * 100
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for name, make in SAMPLES.items():
        data = make()
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            sanitize.clean_attachment("sample.pdf", "application/pdf", data)
            times.append(time.perf_counter() - start)
        print(f"{name}: {len(data) / 2**20:.2f} MiB, clean {min(times):.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
