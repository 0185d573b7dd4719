"""QR codes drawn on the server as inline SVG: no third-party service, no script, no image URL,
so the strict Content-Security-Policy needs no exception (SVG presentation attributes are not
inline styles)."""

from __future__ import annotations

import qrcode
import qrcode.constants
import qrcode.image.svg
from markupsafe import Markup, escape


def svg(data: str, label: str) -> Markup:
    """``data`` as an accessible inline <svg> element (white quiet zone included)."""
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=4,
        image_factory=qrcode.image.svg.SvgPathFillImage,
    )
    code.add_data(data)
    code.make(fit=True)
    markup: str = code.make_image().to_string(encoding="unicode")
    if not markup.startswith("<svg "):  # pragma: no cover - a change in the qrcode package
        raise RuntimeError("unexpected SVG from qrcode")
    # The markup is the library's, from our own data (no user input reaches it unescaped);
    # only the label, escaped, is added.
    return Markup(  # noqa: S704  # nosec B704  # library SVG of our data; the label escaped
        f'<svg class="qr" role="img" aria-label="{escape(label)}" ' + markup[len("<svg ") :]
    )
