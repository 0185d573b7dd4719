"""Images: re-encoded from their pixels, so no metadata survives."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

from portal.services.attachments.sanitize.core import CannotClean, CleanFailure, FileKind

MAX_IMAGE_PIXELS = 40_000_000
"""Largest image (width x height) decoded: a 10 MiB PNG can otherwise expand to gigabytes."""


_PIL_FORMATS = {
    FileKind.JPEG: "JPEG",
    FileKind.PNG: "PNG",
    FileKind.WEBP: "WEBP",
    FileKind.GIF: "GIF",
}


def _clean_image(kind: FileKind, data: bytes) -> bytes:
    """A new file holding the picture's pixels only, turned upright.

    Memory: the decoded pixels are the large part (Pillow keeps 4 bytes a pixel for RGB, 92 MiB
    for a 24-megapixel photo). They are turned in place and copied once into the clean image,
    then released before it is encoded, so at most two copies exist at once (docs/limits.md,
    "Attachment cleaning: memory"). The picture is decoded at its full size: ``Image.draft``
    would decode a JPEG at a fraction of it for less memory, but the file kept would then be
    smaller than the one sent, which nobody asked for."""
    pil_format = _PIL_FORMATS[kind]
    with warnings.catch_warnings():
        # Pillow warns (rather than raises) between its own limit and twice it; our own
        # limit below is stricter, but a warning must never turn into an unexpected error.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            opened = Image.open(io.BytesIO(data), formats=[pil_format])
        except Image.DecompressionBombError as exc:
            raise CannotClean(CleanFailure.TOO_MANY_PIXELS) from exc
        try:
            width, height = opened.size
            if width * height > MAX_IMAGE_PIXELS:
                raise CannotClean(CleanFailure.TOO_MANY_PIXELS, f"{width}x{height}")
            if getattr(opened, "is_animated", False):
                raise CannotClean(CleanFailure.ANIMATED)
            opened.load()
            # Turn the pixels as the EXIF orientation says, before the EXIF is dropped. In
            # place: the turned pixels replace the decoded ones (a copy is made only where
            # there is something to turn, and the decoded pixels are freed at once).
            ImageOps.exif_transpose(opened, in_place=True)
            fresh = _pixels_only(opened, kind)
        finally:
            opened.close()  # the decoded pixels, if _pixels_only has not released them yet
    out = io.BytesIO()
    if kind is FileKind.JPEG:
        fresh.save(out, "JPEG", quality=90)
    elif kind is FileKind.WEBP:
        fresh.save(out, "WEBP", quality=90)
    else:
        fresh.save(out, pil_format)
    return out.getvalue()  # the BytesIO's own buffer, not a copy of it


_KEPT_MODES = {
    FileKind.JPEG: {"L", "RGB", "CMYK"},
    FileKind.PNG: {"1", "L", "LA", "RGB", "RGBA", "I", "I;16", "P"},
    FileKind.WEBP: {"RGB", "RGBA"},
    FileKind.GIF: {"L", "P"},
}


def _pixels_only(image: Image.Image, kind: FileKind) -> Image.Image:
    """A new image holding only the pixels (and palette): no ``info``, hence no EXIF, XMP,
    ICC profile, text chunks or comments for the encoder to copy.

    ``image`` is closed (its pixels released) as soon as they are copied, and so is an image
    converted from it, so that no more than two copies of the pixels exist at any time."""
    if image.mode not in _KEPT_MODES[kind]:
        if kind is FileKind.GIF:
            converted = image.convert("P")
        else:
            alpha = "A" in image.mode or image.has_transparency_data
            target = "RGBA" if alpha and kind is not FileKind.JPEG else "RGB"
            converted = image.convert(target)
        image.close()
        image = converted
    # A new, blank image of the same mode and size, and the pixels pasted into it (a raw
    # copy, the modes being equal): nothing else of ``image`` comes along. This is what
    # ``Image.frombytes(image.tobytes())`` did, without the two intermediate byte strings.
    fresh = Image.new(image.mode, image.size)
    fresh.paste(image)
    if image.mode == "P" and image.palette is not None:
        palette_mode = image.palette.mode
        fresh.putpalette(image.getpalette(palette_mode) or [], palette_mode)
        transparency = image.info.get("transparency")
        if isinstance(transparency, int | bytes):
            fresh.info["transparency"] = transparency  # which colour is see-through: pixels
    elif image.mode in {"L", "RGB"} and "transparency" in image.info:
        fresh.info["transparency"] = image.info["transparency"]
    image.close()
    return fresh
