"""Server-rendered SVG charts for the insights pages: no JavaScript, no other origin, nothing
but the counts the table beside each chart shows.

Every label is escaped here (labels come from configuration). The output depends only on the
arguments, so the same release always draws the same bytes. A hidden count (None) is drawn as a
small hatched box of fixed size with a text mark: its size never hints at its value. Only
presentation attributes are used, never ``style``, so the strict Content-Security-Policy holds.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

BAR_COLOUR = "#2f5d8a"
HIDDEN_COLOUR = "#6b6b6b"
LABEL_WIDTH = 220
BAR_AREA = 320
ROW_HEIGHT = 24
MAX_LABEL = 32
FONT = 'font-family="sans-serif" font-size="12"'


def _short(label: str, limit: int = MAX_LABEL) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _hatch(chart_id: str) -> str:
    return (
        f'<defs><pattern id="{chart_id}-hatch" width="6" height="6" '
        'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{HIDDEN_COLOUR}" stroke-width="2"/>'
        "</pattern></defs>"
    )


def _open(chart_id: str, width: int, height: int, title: str, description: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
        _hatch(chart_id),
    ]


def bars(
    chart_id: str,
    title: str,
    items: Sequence[tuple[str, int | None]],
    *,
    hidden_mark: str,
    description: str = "",
) -> Markup:
    """Horizontal bars, one per (label, count); None is drawn as hidden."""
    shown = [value for _label, value in items if value is not None]
    largest = max(shown, default=0)
    height = ROW_HEIGHT * max(len(items), 1) + 8
    width = LABEL_WIDTH + BAR_AREA + 60
    parts = _open(chart_id, width, height, title, description)
    for index, (label, value) in enumerate(items):
        y = 4 + index * ROW_HEIGHT
        text_y = y + 16
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{text_y}" text-anchor="end" {FONT}>'
            f"{escape(_short(label))}</text>"
        )
        if value is None:
            parts.append(
                f'<rect class="hidden-count" x="{LABEL_WIDTH}" y="{y + 3}" width="40" '
                f'height="{ROW_HEIGHT - 6}" fill="url(#{chart_id}-hatch)" '
                f'stroke="{HIDDEN_COLOUR}"/>'
            )
            parts.append(
                f'<text x="{LABEL_WIDTH + 46}" y="{text_y}" {FONT} fill="{HIDDEN_COLOUR}">'
                f"{escape(hidden_mark)}</text>"
            )
            continue
        length = round(BAR_AREA * value / largest) if largest else 0
        parts.append(
            f'<rect class="count" x="{LABEL_WIDTH}" y="{y + 3}" width="{length}" '
            f'height="{ROW_HEIGHT - 6}" fill="{BAR_COLOUR}"/>'
        )
        parts.append(f'<text x="{LABEL_WIDTH + length + 6}" y="{text_y}" {FONT}>{value}</text>')
    parts.append("</svg>")
    drawn = "".join(parts)
    return Markup(drawn)  # noqa: S704  # nosec B704  # every label went through escape()
