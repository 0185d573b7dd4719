"""How much memory cleaning holds: no needless copy of a whole file or of a picture's pixels
(docs/limits.md, "Attachment cleaning: memory"). What is removed is tested in
test_sanitize.py; these tests check that holding less did not change what is kept."""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage

from portal.services.attachments import sanitize
from portal.services.attachments.sanitize import detect as sanitize_detect
from portal.web import uploads
from tests.support.samples import AUTHOR, jpeg_with_gps

#: A 24-megapixel photo, as the attachments benchmark sends; Pillow keeps RGB at 4 bytes a pixel.
WIDTH, HEIGHT = 6000, 4000
PIXEL_BYTES = WIDTH * HEIGHT * 4

#: Run in a fresh process. The peak is the process's own VmHWM, which clear_refs resets;
#: getrusage's ru_maxrss would not do: it also keeps the RSS of the forked parent (pytest).
_MEASURE = """
import sys
from pathlib import Path
from portal.services.attachments import sanitize

data, small = sys.stdin.buffer.read().split(b"--small--", 1)
# Everything cleaning imports or sets up on first use (Pillow loads its plugins then), so that
# only the large photo's own memory is measured.
sanitize.clean_attachment("small.jpg", "image/jpeg", small)
def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
try:
    Path("/proc/self/clear_refs").write_text("5")  # the peak restarts from here
except OSError:
    print("unsupported")
    raise SystemExit
before = status("VmRSS")
cleaned = sanitize.clean_attachment("photo.jpg", "image/jpeg", data)
print(status("VmHWM") - before, len(cleaned.data))
"""


def _large_photo() -> bytes:
    gradient = Image.linear_gradient("L").resize((WIDTH, HEIGHT))
    bands = [
        gradient,
        gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        gradient.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    ]
    out = io.BytesIO()
    Image.merge("RGB", bands).save(out, "JPEG", quality=80)
    return out.getvalue()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_cleaning_a_photo_holds_at_most_two_copies_of_its_pixels() -> None:
    """The decoded pixels and one clean copy: 2 x 92 MiB for 24 megapixels. Before, the
    orientation step copied them, and the copy went through two byte strings of the pixels
    (344 MiB for this photo). Measured in a fresh process, whose peak is its own."""
    sent = _large_photo() + b"--small--" + jpeg_with_gps()
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE], input=sent, capture_output=True, timeout=120
    )
    assert measured.returncode == 0, measured.stderr.decode()
    if measured.stdout.strip() == b"unsupported":
        pytest.skip("this system does not let a process reset its peak memory")
    growth, cleaned_size = (int(n) for n in measured.stdout.split())
    assert cleaned_size > 0
    assert 1.9 * PIXEL_BYTES <= growth < 2.5 * PIXEL_BYTES, growth / 2**20


def test_a_large_photo_is_kept_at_full_size() -> None:
    """Holding less memory did not make the picture smaller (no reduced decode)."""
    cleaned = sanitize.clean_attachment("photo.jpg", "image/jpeg", _large_photo())
    with Image.open(io.BytesIO(cleaned.data)) as image:
        assert image.size == (WIDTH, HEIGHT) and image.mode == "RGB"
        assert not image.getexif()


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_closed_source_leaves_a_clean_upright_picture(orientation: int) -> None:
    """The decoded image is closed before the clean one is encoded: the clean one must not
    depend on it (nothing shared), and still carries no metadata."""
    cleaned = sanitize.clean_attachment("p.jpg", "image/jpeg", jpeg_with_gps(orientation))
    assert AUTHOR.encode() not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as image:
        assert image.size == ((48, 64) if orientation == 6 else (64, 48))
        assert not image.getexif() and "exif" not in image.info


def test_an_upload_is_not_copied_out_of_its_stream() -> None:
    """The bytes handed to cleaning are the in-memory stream's own buffer: a copy would hold
    every file twice for as long as the request lasts."""
    stream = io.BytesIO()
    for _ in range(16):  # written in pieces, as the multipart parser does
        stream.write(b"x" * 65536)
    stream.seek(0)
    file = FileStorage(stream, filename="notes.txt", content_type="text/plain")

    tracemalloc.start()
    try:
        (upload,) = uploads.uploads_of([file])
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert upload.data is stream.getvalue()
    assert len(upload.data) == 16 * 65536
    # The buffer trimmed to its size is all tracemalloc sees allocated, never a second copy.
    assert peak < 1.5 * len(upload.data)


def test_a_stream_that_is_not_in_memory_is_read() -> None:
    stream = io.BufferedReader(io.BytesIO(b"plain words"))
    file = FileStorage(stream, filename="a.txt", content_type="text/plain")
    assert uploads.uploads_of([file])[0].data == b"plain words"


def test_text_is_checked_in_steps_without_losing_a_character_across_them() -> None:
    step = sanitize_detect._TEXT_STEP
    # A four-byte character that starts one byte before a step ends, and a CJK one across the
    # next boundary: both decode whole.
    text = b"a" * (step - 1) + "😀".encode() + b"b" * (step - 5) + "报".encode() + b"\n"
    assert sanitize_detect._is_text(text)
    cleaned = sanitize.clean_attachment("notes.txt", "text/plain", text)
    assert cleaned.data is text  # kept as sent, not copied
    # A character cut short at the very end, or a control byte in a later step, is refused.
    assert not sanitize_detect._is_text(text + "报".encode()[:2])
    assert not sanitize_detect._is_text(b"a" * (2 * step + 10) + b"\x00" + b"a")
    assert not sanitize_detect._is_text(b"a" * (step + 3) + b"\xff")
