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
#: A heatmap cell's count is written in white above this share of the largest count, in black
#: up to it: where the two contrasts with the shaded cell cross, so each keeps 4.5:1 (WCAG 1.4.3).
WHITE_INK_ABOVE = 0.82
LABEL_WIDTH = 220
BAR_AREA = 320
ROW_HEIGHT = 24
CELL_WIDTH = 64
CELL_HEIGHT = 28
HEADER_HEIGHT = 110
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


def heatmap(
    chart_id: str,
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    cells: Sequence[Sequence[int | None]],
    *,
    hidden_mark: str,
    description: str = "",
) -> Markup:
    """A shaded grid: darker for larger counts; hidden cells hatched with a text mark."""
    shown = [value for row in cells for value in row if value is not None]
    largest = max(shown, default=0)
    width = LABEL_WIDTH + CELL_WIDTH * max(len(columns), 1) + 8
    height = HEADER_HEIGHT + CELL_HEIGHT * max(len(rows), 1) + 8
    parts = _open(chart_id, width, height, title, description)
    for j, column in enumerate(columns):
        x = LABEL_WIDTH + j * CELL_WIDTH + CELL_WIDTH // 2
        parts.append(
            f'<text x="{x}" y="{HEADER_HEIGHT - 6}" transform="rotate(-40 {x} '
            f'{HEADER_HEIGHT - 6})" {FONT}>{escape(_short(column, 18))}</text>'
        )
    for i, (label, row) in enumerate(zip(rows, cells, strict=True)):
        y = HEADER_HEIGHT + i * CELL_HEIGHT
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 18}" text-anchor="end" {FONT}>'
            f"{escape(_short(label))}</text>"
        )
        for j, value in enumerate(row):
            x = LABEL_WIDTH + j * CELL_WIDTH
            centre = x + CELL_WIDTH // 2
            if value is None:
                parts.append(
                    f'<rect class="hidden-count" x="{x}" y="{y}" width="{CELL_WIDTH}" '
                    f'height="{CELL_HEIGHT}" fill="url(#{chart_id}-hatch)" stroke="#ffffff"/>'
                )
                parts.append(
                    f'<text x="{centre}" y="{y + 18}" text-anchor="middle" {FONT} '
                    f'fill="#000000">{escape(hidden_mark)}</text>'
                )
                continue
            shade = f"{0.08 + 0.92 * value / largest:.2f}" if largest and value else "0.00"
            ink = "#ffffff" if largest and value / largest > WHITE_INK_ABOVE else "#000000"
            parts.append(
                f'<rect class="count" x="{x}" y="{y}" width="{CELL_WIDTH}" '
                f'height="{CELL_HEIGHT}" fill="{BAR_COLOUR}" fill-opacity="{shade}" '
                f'stroke="#ffffff"/>'
            )
            parts.append(
                f'<text x="{centre}" y="{y + 18}" text-anchor="middle" {FONT} '
                f'fill="{ink}">{value}</text>'
            )
    parts.append("</svg>")
    drawn = "".join(parts)
    return Markup(drawn)  # noqa: S704  # nosec B704  # every label went through escape()
