#!/usr/bin/env python3
"""Attachments end to end: cleaning, encrypting and storing, one full submission over HTTP with
the most and largest files allowed, and the staff download (issue 5).

The files are made in memory before anything is timed, one of each kind the portal cleans in
a different way:

* ``photo``: a 24-megapixel JPEG (6000 x 4000, noise over gradients so that it compresses like
  a photograph, at the highest quality that stays under ``--target-mib``) with EXIF camera make,
  model, artist, date and GPS position, and a JPEG comment. Cleaning decodes every pixel and
  encodes a new JPEG.
* ``pdf``: a PDF of about ``--target-mib`` made with pikepdf: pages each with a line of text and
  its own JPEG image XObject (DCTDecode), an author in the document information and XMP
  metadata. Cleaning rewrites the object graph and copies the streams as they are.
* ``docx``: a Word document (zip) whose ``word/media`` holds a 12-megapixel JPEG with EXIF GPS,
  with core properties naming an author. Cleaning rewrites every part and cleans the picture like
  an uploaded photo.
* ``text``: a UTF-8 plain text file of about ``--target-mib`` (lines of prose with accents).
  Cleaning checks that it is text (decoding it and looking at every character).

The phases, all in this one process but the first:

0. **Each file alone**: each file, and the largest picture the cleaner decodes (a 40-megapixel
   PNG with alpha), cleaned in a fresh interpreter of its own (Linux), which prints how far its
   peak RSS rose during the cleaning: what one file's cleaning holds, apart from anything else.
1. **Clean**: ``sanitize.clean_attachment`` on each file, ``--rounds`` times.
2. **Clean, encrypt, store** (service level, no HTTP): ``attachments.prepare`` on the one file,
   then ``intake.submit`` of an anonymous concern carrying it (which encrypts it in 256 KiB
   chunks under the new case key and adds the rows) and ``commit``, on a new session from the
   app's sessionmaker; the two parts are timed apart. A concern without files is timed the same
   way as the baseline (Argon2 uses the cheapest parameters, ``TEST_ARGON2``, throughout: the key
   derivation is ``bench/submissions.py``'s subject, not this one's).
3. **HTTP submission** through the real Flask app and ``app.test_client()`` (in process, no
   network, no server): ``GET /report`` for the CSRF token and cookie, then ``POST /report`` as
   ``multipart/form-data`` with ``attachment_max_count`` files (the kinds above in turn, so with
   the default 5 a second photo), encoded in memory beforehand (Werkzeug's test client would
   otherwise spool a large body to a temporary file), expecting the 303 to the receipt, then
   ``GET /report/receipt``. The POST alone is timed, ``--rounds`` times, each a new reporter.
   Then once more under ``tracemalloc``, for the peak of the Python allocations made during the
   POST (the request body built beforehand is not counted; Pillow's pixel buffers are allocated
   outside Python's allocator and are not seen by tracemalloc, only by the RSS).
4. **Staff download** through the test client after the real log-in (password, then the current
   TOTP code) of the ombudsperson made for the run: ``GET /staff/cases/<handle>`` (the handle
   read from the database; the attachment links read from the page), then each attachment
   through ``GET /staff/cases/<handle>/attachments/<id>``, the body read as a stream
   (``buffered=False``) and counted, not kept, checked against ``Content-Length``.
5. **Burst** (with ``--burst N``, N of at least 2): N reporters send the maximal form of phase 3
   at the same moment, from N threads of this process (as N threads of one gunicorn worker
   would serve them), once with the attachment cleaning pool bounded to one form at a time and
   once to N (what a process did before the pool existed). The wait for a slot is set long
   enough for every form to get through, so both runs store all N and the memory of the whole
   burst is measured. Before each run the memory freed so far is given back to the system
   (glibc's ``malloc_trim``), so that each run starts from what is alive.

Memory: on Linux the process's peak RSS is reset before each phase (``5`` written to
``/proc/self/clear_refs``, which resets the high-water mark ``VmHWM`` of ``/proc/self/status``),
so each phase's peak is its own; where that is not possible the peak is the process's since it
started (``getrusage``'s ``ru_maxrss``, which also keeps what the process that started this one
held), and the output says so. Uploads are held in memory by design
(``portal/web/uploads.py``), so a request's peak is several times the size of its files.

Throughput is MiB of input (the file as sent) per second. Sizes are MiB (2^20 bytes).

The database is a temporary SQLite file, or with ``--database-url`` a temporary database made on
that PostgreSQL server (the URL must let us CREATE and DROP DATABASE) and dropped at the end.

Run ``.venv/bin/python bench/attachments.py --quick`` for a smoke run with small files; without
it the files are full size. Timings are printed (and written as JSON with ``--json``), never
asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import gc
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import benchlib
import pikepdf
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from portal import crypto
from portal.app import create_app
from portal.db import make_engine, make_sessionmaker
from portal.instance import InstanceSecrets
from portal.models import Attachment, Case, Role, StaffUser
from portal.ops import migrate
from portal.services.accounts import accounts as staff
from portal.services.accounts import second_factor
from portal.services.attachments import sanitize
from portal.services.attachments import store as attachments
from portal.services.configuration import taxonomy
from portal.services.reporting import intake
from portal.settings import PROJECT_ROOT, TEST_ARGON2, Settings

MIB = 2**20
PASSWORD = "benchmark password, not a secret"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
ATTACHMENT_LINK = r'href="(/staff/cases/{handle}/attachments/[0-9a-f]+)"'
AUTHOR = "Jane Q. Reporter"
DESCRIPTION = (
    "The safety checks on the loading dock are signed without being done. The attached photos, "
    "the inspection report and my notes show it. (benchmark submission)"
)
_OOXML = "application/vnd.openxmlformats-officedocument."
_PKG = "application/vnd.openxmlformats-package."
_OD = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
_PR = "http://schemas.openxmlformats.org/package/2006/relationships/"


# --- the files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    kind: str
    filename: str
    content_type: str
    data: bytes

    @property
    def mib(self) -> float:
        return len(self.data) / MIB


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "BenchCam"  # Make
    exif[0x0110] = "BenchCam X24"  # Model
    exif[0x013B] = AUTHOR  # Artist
    exif[0x0132] = "2026:11:02 09:41:07"  # DateTime
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 12.5), 3: "E", 4: (4.0, 53.0, 30.2)}  # GPS IFD
    return exif


def photo_pixels(width: int, height: int) -> Image.Image:
    """Gradients under Gaussian noise: compresses about like a detailed photograph. The noise
    is made as one tile and pasted over the frame (noise for 24 MP at once is slow)."""
    tile_size = (min(width, 1000), min(height, 1000))
    channels = []
    for n, gradient in enumerate(("linear", "radial", "linear")):
        base = (
            Image.linear_gradient("L") if gradient == "linear" else Image.radial_gradient("L")
        ).resize((width, height))
        if n == 2:
            base = base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        tile = Image.effect_noise(tile_size, 30 + 5 * n)
        noise = Image.new("L", (width, height))
        for x in range(0, width, tile_size[0]):
            for y in range(0, height, tile_size[1]):
                noise.paste(tile, (x, y))
        channels.append(Image.blend(base, noise, 0.5))
    return Image.merge("RGB", channels)


def jpeg_under(image: Image.Image, limit: int, exif: Image.Exif | None = None) -> bytes:
    """The highest quality (95 down to 50) whose JPEG is at most ``limit`` bytes."""
    data = b""
    for quality in range(95, 49, -5):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, exif=exif or Image.Exif(), comment=AUTHOR)
        data = out.getvalue()
        if len(data) <= limit:
            return data
    return data


def make_photo(megapixels: float, limit: int) -> bytes:
    height = round((megapixels * 1e6 / 1.5) ** 0.5)
    width = round(height * 1.5)
    return jpeg_under(photo_pixels(width, height), limit, _exif())


def make_pdf(target: int, image: bytes, size: tuple[int, int]) -> bytes:
    """Pages of text and an image each, added until the file reaches ``target`` bytes."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont="/Helvetica"
        )
    )
    width, height = size
    pages = max(1, (target - 20_000) // (len(image) + 400))
    for n in range(pages):
        pdf.add_blank_page(page_size=(612, 792))
        page = pdf.pages[-1]
        picture = pdf.make_stream(
            image,
            Type=pikepdf.Name.XObject,
            Subtype=pikepdf.Name.Image,
            Width=width,
            Height=height,
            ColorSpace=pikepdf.Name.DeviceRGB,
            BitsPerComponent=8,
            Filter=pikepdf.Name.DCTDecode,
        )
        page.obj.Resources = pikepdf.Dictionary(
            Font=pikepdf.Dictionary(F1=font), XObject=pikepdf.Dictionary(Im1=picture)
        )
        page.obj.Contents = pdf.make_stream(
            f"BT /F1 14 Tf 72 740 Td (Inspection report, page {n + 1}) Tj ET "
            f"q 468 0 0 351 72 360 cm /Im1 Do Q".encode()
        )
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["dc:creator"] = [AUTHOR]
        meta["xmp:CreatorTool"] = "BenchWriter 1.0"
    pdf.docinfo["/Author"] = AUTHOR
    pdf.docinfo["/Producer"] = "BenchWriter 1.0"
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _rel(rid: str, rel_type: str, target: str) -> str:
    return f'<Relationship Id="{rid}" Type="{rel_type}" Target="{target}"/>'


def make_docx(image: bytes, paragraphs: int = 200) -> bytes:
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    content_types = (
        f'{head}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="rels" ContentType="{_PKG}relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Default Extension="jpeg" ContentType="image/jpeg"/>'
        '<Override PartName="/word/document.xml" '
        f'ContentType="{_OOXML}wordprocessingml.document.main+xml"/>'
        f'<Override PartName="/docProps/core.xml" ContentType="{_PKG}core-properties+xml"/>'
        "</Types>"
    )
    package_rels = (
        f'{head}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + _rel("rId1", f"{_OD}officeDocument", "word/document.xml")
        + _rel("rId2", f"{_PR}metadata/core-properties", "docProps/core.xml")
        + "</Relationships>"
    )
    document_rels = (
        f'{head}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + _rel("rId1", f"{_OD}image", "media/image1.jpeg")
        + "</Relationships>"
    )
    body = "".join(
        f"<w:p><w:r><w:t>Paragraph {n}: what was seen at the loading dock, and when.</w:t></w:r>"
        "</w:p>"
        for n in range(paragraphs)
    )
    document = (
        f'{head}<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{body}</w:body></w:document>"
    )
    core = (
        f"{head}<cp:coreProperties "
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:creator>{AUTHOR}</dc:creator><cp:lastModifiedBy>{AUTHOR}</cp:lastModifiedBy>"
        "</cp:coreProperties>"
    )
    parts = {
        "[Content_Types].xml": content_types.encode(),
        "_rels/.rels": package_rels.encode(),
        "word/document.xml": document.encode(),
        "word/_rels/document.xml.rels": document_rels.encode(),
        "word/media/image1.jpeg": image,
        "docProps/core.xml": core.encode(),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def make_text(target: int) -> bytes:
    line = (
        "Le 2 novembre, à 9 h 41, le contrôle de sécurité du quai n° 3 a été signé sans être "
        "fait ; my notes of what the supervisor said follow, line {n}.\n"
    )
    lines: list[bytes] = []
    size = 0
    n = 0
    while True:
        encoded = line.format(n=n).encode()
        if size + len(encoded) > target:
            return b"".join(lines)
        lines.append(encoded)
        size += len(encoded)
        n += 1


def make_samples(quick: bool, target_mib: float) -> list[Sample]:
    limit = int(target_mib * MIB)
    photo_mp, docx_mp, page_size = (24.0, 12.0, (1600, 1200))
    if quick:
        limit = min(limit, 2 * MIB)
        photo_mp, docx_mp, page_size = (3.0, 2.0, (800, 600))
    page_image = jpeg_under(photo_pixels(*page_size), limit // 10)
    return [
        Sample("photo", "IMG_20261102_094107.jpg", "image/jpeg", make_photo(photo_mp, limit)),
        Sample(
            "pdf",
            "inspection-report.pdf",
            "application/pdf",
            make_pdf(limit, page_image, page_size),
        ),
        Sample(
            "docx",
            "notes-for-the-ombudsperson.docx",
            _OOXML + "wordprocessingml.document",
            make_docx(make_photo(docx_mp, limit)),
        ),
        Sample("text", "what-the-supervisor-said.txt", "text/plain", make_text(limit)),
    ]


# --- the database and the app ------------------------------------------------------------------


def prepare_database(settings: Settings) -> tuple[str, StaffUser]:
    """Migrate, load the default taxonomy, add one enrolled ombudsperson in "general" and "hr"
    (without one the report form says the channel is not open)."""
    engine = make_engine(settings.effective_database_url)
    try:
        migrate.upgrade(engine)
        with make_sessionmaker(engine)() as session:
            taxonomy.load_taxonomy(
                session, taxonomy.read_taxonomy_file(PROJECT_ROOT / "config" / "taxonomy.toml")
            )
            created = staff.create_staff(
                session,
                settings,
                email="ombuds@example.org",
                display_name="Bench Ombudsperson",
                roles=(Role.OMBUDSPERSON,),
                queue_slugs=("general", "hr"),
                password=PASSWORD,
                now=dt.datetime.now(dt.UTC),
            )
            second_factor.assign_totp_secret(session, created.user, TOTP_SECRET)
            session.commit()
            user = created.user
            session.expunge(user)
        return benchlib.server_version(engine), user
    finally:
        engine.dispose()


# --- measuring ---------------------------------------------------------------------------------


def reset_peak_rss() -> bool:
    """Reset the peak RSS to the current RSS (Linux: clear_refs "5"); False where impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Memory:
    rss_before_mib: float = 0.0
    peak_rss_mib: float = 0.0
    peak_is_this_phase: bool = False


@contextlib.contextmanager
def memory_of_phase() -> Iterator[Memory]:
    gc.collect()
    memory = Memory(rss_before_mib=benchlib.rss_mib(), peak_is_this_phase=reset_peak_rss())
    yield memory
    memory.peak_rss_mib = benchlib.max_rss_mib()


def traced_peak_mib(call: Callable[[], object]) -> float:
    """The peak of Python allocations made during ``call`` (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        call()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / MIB


def timing(seconds: list[float], mib: float) -> dict[str, float]:
    median = statistics.median(seconds)
    return {
        "n": len(seconds),
        "median_s": median,
        "min_s": min(seconds),
        "max_s": max(seconds),
        "mib": mib,
        "mib_per_s": mib / median if median > 0 else float("inf"),
    }


# --- phases ------------------------------------------------------------------------------------

#: Cleans the file on stdin in a fresh interpreter and prints how far its peak RSS rose: after a
#: small file is cleaned first (Pillow loads its plugins on first use), the peak is reset and
#: ``VmHWM`` read after the cleaning.
_CLEAN_ALONE = """
import sys
from pathlib import Path
from portal.services.attachments import sanitize

name, data = sys.argv[1], sys.stdin.buffer.read()
sanitize.clean_attachment("warm.txt", "text/plain", b"warm")
def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
Path("/proc/self/clear_refs").write_text("5")
before = status("VmRSS")
sanitize.clean_attachment(name, "", data)
print(status("VmHWM") - before)
"""


def worst_picture() -> Sample:
    """The largest picture the cleaner decodes: 40 million pixels (8000 x 5000) with alpha,
    gradients that compress to well under 1 MiB as PNG."""
    gradient = Image.linear_gradient("L").resize((8000, 5000))
    bands = [
        gradient,
        gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        gradient.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
        gradient,
    ]
    out = io.BytesIO()
    Image.merge("RGBA", bands).save(out, "PNG")
    return Sample("40 MP PNG", "largest-picture.png", "image/png", out.getvalue())


def phase_alone(samples: list[Sample]) -> dict[str, Any]:
    """Each file cleaned alone in a fresh process: how much its cleaning raises the RSS."""
    results: dict[str, Any] = {}
    for sample in samples:
        run_ = subprocess.run(
            [sys.executable, "-c", _CLEAN_ALONE, sample.filename],
            input=sample.data,
            capture_output=True,
            timeout=300,
        )
        if run_.returncode != 0:
            results[sample.kind] = {"mib": sample.mib, "error": run_.stderr.decode()[-300:]}
        else:
            results[sample.kind] = {"mib": sample.mib, "rss_growth_mib": float(run_.stdout)}
    return results


def phase_clean(samples: list[Sample], rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with memory_of_phase() as memory:
        for sample in samples:
            seconds = []
            out = 0
            for _ in range(rounds):
                started = time.perf_counter()
                cleaned = sanitize.clean_attachment(
                    sample.filename, sample.content_type, sample.data
                )
                seconds.append(time.perf_counter() - started)
                out = len(cleaned.data)
                del cleaned
            results[sample.kind] = {**timing(seconds, sample.mib), "cleaned_mib": out / MIB}
    return {"files": results, "memory": vars(memory)}


def phase_service(
    app: Flask, settings: Settings, pepper: bytes, samples: list[Sample], rounds: int
) -> dict[str, Any]:
    state = app.extensions["portal"]
    results: dict[str, Any] = {}

    def one(sample: Sample | None) -> tuple[float, float]:
        with state.sessions() as session:
            rules = attachments.rules(session, settings)
            started = time.perf_counter()
            prepared = (
                attachments.prepare(
                    [attachments.Upload(sample.filename, sample.content_type, sample.data)], rules
                )
                if sample is not None
                else []
            )
            cleaned = time.perf_counter()
            intake.submit(
                session,
                settings,
                pepper,
                intake.Concern(
                    category_code="harassment",
                    description=DESCRIPTION,
                    happened="ongoing",
                    attachments=prepared,
                ),
                dt.datetime.now(dt.UTC).date(),
            )
            session.commit()
            return cleaned - started, time.perf_counter() - cleaned

    with memory_of_phase() as memory:
        for sample in [None, *samples]:
            prepare_s, store_s, total_s = [], [], []
            for _ in range(rounds):
                a, b = one(sample)
                prepare_s.append(a)
                store_s.append(b)
                total_s.append(a + b)
            name = sample.kind if sample is not None else "(no file)"
            mib = sample.mib if sample is not None else 0.0
            results[name] = {
                "prepare_median_s": statistics.median(prepare_s),
                "submit_and_commit_median_s": statistics.median(store_s),
                **timing(total_s, mib),
            }
    return {"files": results, "memory": vars(memory)}


def _csrf(html: str) -> str:
    match = TOKEN.search(html)
    if match is None:
        raise RuntimeError("no CSRF token on the page")
    return match.group(1)


def form_files(samples: list[Sample], count: int) -> list[Sample]:
    chosen = []
    for n in range(count):
        sample = samples[n % len(samples)]
        if n >= len(samples):
            stem, extension = sample.filename.rsplit(".", 1)
            sample = Sample(
                sample.kind, f"{stem}-{n + 1}.{extension}", sample.content_type, sample.data
            )
        chosen.append(sample)
    return chosen


def http_submission(app: Flask, files: list[Sample]) -> Callable[[], float]:
    """A callable doing one submission as a new reporter; returns the POST's seconds."""

    def submit() -> float:
        client = app.test_client()
        token = _csrf(client.get("/report").text)
        data: dict[str, Any] = {
            "csrf_token": token,
            "category": "harassment",
            "description": DESCRIPTION,
            "happened": "ongoing",
            "identity": "anonymous",
            "site": "",
            "department": "",
            "files": [
                FileStorage(io.BytesIO(f.data), filename=f.filename, content_type=f.content_type)
                for f in files
            ],
        }
        boundary, body = encode_multipart(data)
        del data
        started = time.perf_counter()
        posted = client.post(
            "/report", data=body, content_type=f"multipart/form-data; boundary={boundary}"
        )
        seconds = time.perf_counter() - started
        if posted.status_code != 303 or posted.location != "/report/receipt":
            raise RuntimeError(f"POST /report answered {posted.status_code}: {posted.text[:500]}")
        shown = client.get(posted.location)
        if shown.status_code != 200 or 'id="receipt"' not in shown.text:
            raise RuntimeError(f"GET /report/receipt answered {shown.status_code}")
        return seconds

    return submit


def phase_http_submission(app: Flask, files: list[Sample], rounds: int) -> dict[str, Any]:
    submit = http_submission(app, files)
    mib = sum(f.mib for f in files)
    with memory_of_phase() as memory:
        seconds = [submit() for _ in range(rounds)]
    traced: list[float] = []
    traced_peak = traced_peak_mib(lambda: traced.append(submit()))
    return {
        "files": [{"kind": f.kind, "mib": f.mib} for f in files],
        **timing(seconds, mib),
        "memory": vars(memory),
        "tracemalloc_peak_mib": traced_peak,
        "traced_post_s": traced[0],
    }


def release_free_memory() -> None:
    """Give the memory freed so far back to the system (glibc's ``malloc_trim``), so that a
    run's "RSS before" is what is alive and its peak is not hidden in what an earlier run
    freed but the allocator kept (each thread has its own malloc arena)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def phase_burst(app: Flask, files: list[Sample], reporters: int) -> dict[str, Any]:
    """``reporters`` maximal forms at once from as many threads, with the cleaning pool
    bounded to 1 and then to ``reporters`` (unbounded for this burst)."""
    submit = http_submission(app, files)
    results: dict[str, Any] = {}
    try:
        for bound in (1, reporters):
            # A wait longer than the settings allow (19 s): every form gets through, so the
            # runs differ in how many are cleaned at once, not in how many are refused.
            attachments.configure_cleaning_pool(bound, 600)
            start = threading.Barrier(reporters)

            def one(start: threading.Barrier) -> float:
                start.wait()
                return submit()

            release_free_memory()
            with memory_of_phase() as memory:
                started = time.perf_counter()
                with ThreadPoolExecutor(reporters) as pool:
                    seconds = list(pool.map(one, [start] * reporters))
                wall = time.perf_counter() - started
            results[f"bound {bound}"] = {
                "bound": bound,
                "wall_s": wall,
                "slowest_post_s": max(seconds),
                "fastest_post_s": min(seconds),
                "memory": vars(memory),
            }
    finally:
        state = app.extensions["portal"]
        attachments.configure_cleaning_pool(
            state.capacity.attachment_pool_size(state.settings),
            state.settings.attachment_wait_seconds,
        )
    return {"reporters": reporters, "runs": results}


def log_in(client: FlaskClient, user: StaffUser) -> str:
    """The real two-step log-in (password, then the current TOTP code); returns where it lands."""
    token = _csrf(client.get("/staff/login").text)
    reply = client.post(
        "/staff/login", data={"csrf_token": token, "email": user.email, "password": PASSWORD}
    )
    if reply.status_code != 302:
        raise RuntimeError(f"log-in, password step: {reply.status_code}")
    token = _csrf(client.get(reply.headers["Location"]).text)
    state = client.application.extensions["portal"]
    code = crypto.totp_code(
        crypto.normalise_totp_secret(TOTP_SECRET), crypto.totp_step(state.clock())
    )
    reply = client.post("/staff/login/code", data={"csrf_token": token, "code": code})
    if reply.status_code != 302:
        raise RuntimeError(f"log-in, code step: {reply.status_code}")
    return str(reply.headers["Location"])


def newest_case_with(app: Flask, count: int) -> str:
    """The handle of a case with ``count`` attachments (one of the HTTP submissions)."""
    with app.extensions["portal"].sessions() as session:
        for case in session.scalars(select(Case)):
            n = len(
                session.scalars(select(Attachment.id).where(Attachment.case_id == case.id)).all()
            )
            if n == count:
                return str(case.handle)
    raise RuntimeError(f"no case with {count} attachments")


def download(client: FlaskClient, path: str) -> tuple[float, int, str]:
    """One download read as a stream; returns its seconds, its size and the file name sent."""
    started = time.perf_counter()
    reply = client.get(path, buffered=False)
    if reply.status_code != 200:
        raise RuntimeError(f"GET {path} answered {reply.status_code}")
    size = 0
    for chunk in reply.response:
        size += len(chunk)
    reply.close()
    seconds = time.perf_counter() - started
    expected = int(reply.headers["Content-Length"])
    if size != expected:
        raise RuntimeError(f"GET {path}: {size} bytes, Content-Length {expected}")
    sent_as = re.search(r'filename="([^"]*)"', reply.headers.get("Content-Disposition", ""))
    return seconds, size, sent_as.group(1) if sent_as else "?"


def phase_download(app: Flask, user: StaffUser, count: int, rounds: int) -> dict[str, Any]:
    client = app.test_client()
    landed = log_in(client, user)
    handle = newest_case_with(app, count)
    started = time.perf_counter()
    page = client.get(f"/staff/cases/{handle}")
    page_seconds = time.perf_counter() - started
    links = sorted(set(re.findall(ATTACHMENT_LINK.format(handle=handle), page.text)))
    if len(links) != count:
        raise RuntimeError(f"the case page links {len(links)} attachments, not {count}")
    results: dict[str, Any] = {}
    with memory_of_phase() as memory:
        for n, path in enumerate(links):
            seconds = []
            size, name = 0, ""
            for _ in range(rounds):
                s, size, name = download(client, path)
                seconds.append(s)
            results[f"{n + 1}. {name}"] = timing(seconds, size / MIB)
    traced_peak = traced_peak_mib(lambda: [download(client, path) for path in links])
    return {
        "logged_in_to": landed,
        "case_page_s": page_seconds,
        "files": results,
        "memory": vars(memory),
        "tracemalloc_peak_mib_all_downloads": traced_peak,
    }


# --- report ------------------------------------------------------------------------------------


def _memory_text(memory: dict[str, Any]) -> str:
    scope = "this phase" if memory["peak_is_this_phase"] else "process since start"
    return (
        f"RSS before {memory['rss_before_mib']:.0f} MiB, peak RSS {memory['peak_rss_mib']:.0f} "
        f"MiB ({scope})"
    )


def print_rows(title: str, rows: dict[str, dict[str, Any]], extra: str = "") -> None:
    print(f"\n{title}")
    width = max([len(name) for name in rows] + [12])
    header = (
        f"  {'':<{width}}  {'MiB':>6}  {'median s':>9}  {'min s':>7}  {'max s':>7}  {'MiB/s':>7}"
    )
    print(header + (f"  {extra}" if extra else ""))
    for name, r in rows.items():
        line = (
            f"  {name:<{width}}  {r['mib']:>6.2f}  {r['median_s']:>9.3f}  {r['min_s']:>7.3f}"
            f"  {r['max_s']:>7.3f}  {r['mib_per_s']:>7.1f}"
        )
        if extra == "cleaned MiB":
            line += f"  {r['cleaned_mib']:>11.2f}"
        elif extra == "prepare s / submit+commit s":
            line += f"  {r['prepare_median_s']:.3f} / {r['submit_and_commit_median_s']:.3f}"
        print(line)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = benchlib.parser(__doc__)
    dflt = " (default: %(default)s)"
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed repetitions of each measurement" + dflt
    )
    parser.add_argument(
        "--target-mib",
        type=float,
        default=9.5,
        help="largest size of the photo, the PDF and the text file, in MiB; must stay under "
        "attachment_max_bytes (10 MiB by default)" + dflt,
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL server URL that may CREATE DATABASE: a temporary database is made on "
        "it and dropped at the end (default: a temporary SQLite file)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--burst",
        type=int,
        default=0,
        help="phase 5: this many maximal forms sent at once from as many threads, with the"
        " cleaning pool bounded to 1 and to that many (default: phase 5 is not run)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: files of at most 2 MiB (3-megapixel photo), one round",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.target_mib <= 0:
        parser.error("--rounds must be at least 1 and --target-mib positive")
    if args.burst == 1 or args.burst < 0:
        parser.error("--burst must be 0 (no burst) or at least 2")
    if args.quick:
        args.rounds = 1
    return args


def run(args: argparse.Namespace, database_url: str, workdir: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    print("\nmaking the files ...", flush=True)
    started = time.perf_counter()
    samples = make_samples(args.quick, args.target_mib)
    print(f"  made in {time.perf_counter() - started:.1f} s:")
    for sample in samples:
        print(f"  {sample.kind:<6} {sample.filename:<36} {sample.mib:6.2f} MiB")
    figures["samples"] = [
        {"kind": s.kind, "filename": s.filename, "bytes": len(s.data)} for s in samples
    ]

    settings = Settings(
        instance_path=workdir / "instance",
        database_url=database_url or f"sqlite:///{workdir / 'portal.db'}",
        secure_cookies=False,
        log_level="WARNING",
        # Every submission comes from the one test client: the per-client limit (5 in 10
        # minutes) would refuse the burst's.
        submit_max_per_client=10_000,
        submit_max_total=10_000,
    ).with_argon2(TEST_ARGON2)
    limit = settings.attachment_max_bytes
    too_big = [s.kind for s in samples if len(s.data) > limit]
    if too_big:
        raise SystemExit(f"larger than attachment_max_bytes ({limit}): {', '.join(too_big)}")
    figures["database"], user = prepare_database(settings)
    print(f"database: {figures['database']}")
    figures["limits"] = {
        "attachment_max_bytes": limit,
        "attachment_max_count": settings.attachment_max_count,
        "max_request_bytes": settings.max_request_bytes,
    }

    print("\n0. each file cleaned alone, in a fresh process ...", flush=True)
    alone = phase_alone([*samples, worst_picture()])
    figures["alone"] = alone
    for kind, row in alone.items():
        growth = (
            f"RSS rose {row['rss_growth_mib']:.0f} MiB"
            if "rss_growth_mib" in row
            else f"not measured: {row['error']}"
        )
        print(f"  {kind:<10} {row['mib']:6.2f} MiB: {growth}")

    print("\n1. clean (sanitize.clean_attachment) ...", flush=True)
    clean = phase_clean(samples, args.rounds)
    figures["clean"] = clean
    print_rows("1. clean, per file:", clean["files"], "cleaned MiB")
    print(f"  {_memory_text(clean['memory'])}")

    secrets = InstanceSecrets.generate()
    app = create_app(settings, secrets=secrets)
    try:
        print("\n2. clean, encrypt, store (service level) ...", flush=True)
        service = phase_service(app, settings, secrets.pepper, samples, args.rounds)
        figures["service"] = service
        print_rows(
            "2. prepare + intake.submit + commit, one file per concern:",
            service["files"],
            "prepare s / submit+commit s",
        )
        print(f"  {_memory_text(service['memory'])}")

        files = form_files(samples, settings.attachment_max_count)
        total = sum(f.mib for f in files)
        print(
            f"\n3. HTTP submission with {len(files)} files, {total:.2f} MiB "
            f"({', '.join(f.kind for f in files)}) ...",
            flush=True,
        )
        http = phase_http_submission(app, files, args.rounds)
        figures["http_submission"] = http
        print_rows("3. POST /report (test client):", {"submission": http})
        print(f"  {_memory_text(http['memory'])}")
        print(
            f"  tracemalloc peak of the POST: {http['tracemalloc_peak_mib']:.0f} MiB (that POST "
            f"took {http['traced_post_s']:.2f} s under tracing)"
        )

        print("\n4. staff download (test client, logged in) ...", flush=True)
        down = phase_download(app, user, len(files), args.rounds)
        figures["download"] = down
        print_rows(
            "4. GET /staff/cases/<handle>/attachments/<id> "
            f"(case page {down['case_page_s']:.3f} s):",
            down["files"],
        )
        print(f"  {_memory_text(down['memory'])}")
        print(
            "  tracemalloc peak over all the downloads: "
            f"{down['tracemalloc_peak_mib_all_downloads']:.1f} MiB"
        )

        if args.burst:
            print(
                f"\n5. burst: {args.burst} forms of {total:.2f} MiB at once, {args.burst} threads",
                flush=True,
            )
            burst = phase_burst(app, files, args.burst)
            figures["burst"] = burst
            for name, run_ in burst["runs"].items():
                print(
                    f"  cleaning pool {name}: all {args.burst} stored in {run_['wall_s']:.2f} s"
                    f" (POSTs {run_['fastest_post_s']:.2f}-{run_['slowest_post_s']:.2f} s);"
                    f" {_memory_text(run_['memory'])}"
                )
    finally:
        app.extensions["portal"].engine.dispose()
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("Portal attachments benchmark (issue 5)\n")
    info = benchlib.machine_info(("Pillow", "pikepdf", "PyNaCl", "Flask", "Werkzeug"))
    for key, value in info.items():
        print(f"{key}: {value}")
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="portal-bench-att-")))
        url = (
            stack.enter_context(benchlib.temporary_postgres(args.database_url))
            if args.database_url
            else ""
        )
        figures = run(args, url, workdir)
    info["load average at end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average at end: {info['load average at end']}")
    if args.json:
        benchlib.write_json(args.json, info, **figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
