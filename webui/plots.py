"""Per-epoch curves drawn with PIL: axes, grid, one coloured line per series, a legend and a
dashed mark where a phase starts. Gradio 5.50's LinePlot stopped drawing lines once its data
changed under a live timer, and the UI must not need a plotting library the API does not."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

COLOURS = [(0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233)]  # Okabe-Ito
SCALE = 2  # drawn at twice the shown size, so lines stay sharp on high-density screens
GRID, AXIS, TEXT, MUTED = (232, 236, 241), (148, 163, 184), (30, 41, 59), (100, 116, 139)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size * SCALE)
    except TypeError:  # a Pillow without FreeType
        return ImageFont.load_default()


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi]."""
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    start = math.floor(lo / step) * step
    return [round(start + i * step, 10) for i in range(math.ceil((hi - start) / step) + 1)]


def y_span(ys: Sequence[float], bounds: tuple[float | None, float | None]) -> tuple[float, float]:
    """The y range to draw: the values' own, widened around a single value (or equal values) by
    a tenth of it (at least 0.05) rather than by ±0.5, and never past ``bounds`` (e.g. a Dice
    lies in [0, 1], a loss is at least 0)."""
    lo, hi = min(ys), max(ys)
    if hi - lo < 1e-9:
        pad = max(0.05, abs(lo) * 0.1)
        lo, hi = lo - pad, hi + pad
    low, high = bounds
    return (lo if low is None else max(lo, low)), (hi if high is None else min(hi, high))


def line_chart(series: dict[str, list[tuple[float, float]]], title: str, size=(440, 250),
               marks: Sequence[tuple[float, str]] = (), x_title: str = "epoch", y_title: str = "",
               bounds: tuple[float | None, float | None] = (None, None)) -> Image.Image:
    """``series``: name -> [(x, y), …]; ``marks``: (x, label) drawn as dashed verticals;
    ``bounds``: what the values cannot leave, which the y axis then does not either."""
    w, h = size[0] * SCALE, size[1] * SCALE
    im = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(im)
    small, big = _font(11), _font(13)
    draw.text((w // 2, 6 * SCALE), title, fill=TEXT, font=big, anchor="mt")
    points = [p for pts in series.values() for p in pts]
    if not points:
        draw.text((w // 2, h // 2), "no data yet", fill=MUTED, font=small, anchor="mm")
        return im
    left, right, top, bottom = 58 * SCALE, w - 12 * SCALE, 44 * SCALE, h - 40 * SCALE
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    low, high = bounds
    y_ticks = [t for t in nice_ticks(*y_span(ys, bounds))
               if (low is None or t >= low - 1e-9) and (high is None or t <= high + 1e-9)]
    x_lo, x_hi = min(xs), max(max(xs), min(xs) + 1)
    y_lo, y_hi = y_ticks[0], y_ticks[-1]

    def at(x, y):
        return (left + (x - x_lo) / (x_hi - x_lo) * (right - left),
                bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top))

    for y in y_ticks:
        _, py = at(x_lo, y)
        draw.line([(left, py), (right, py)], fill=GRID, width=SCALE)
        draw.text((left - 6 * SCALE, py), f"{y:g}", fill=MUTED, font=small, anchor="rm")
    step = max(1, math.ceil((x_hi - x_lo) / 10))
    for x in range(math.ceil(x_lo), math.floor(x_hi) + 1, step):
        px, _ = at(x, y_lo)
        draw.line([(px, bottom), (px, bottom + 4 * SCALE)], fill=AXIS, width=SCALE)
        draw.text((px, bottom + 6 * SCALE), str(x), fill=MUTED, font=small, anchor="mt")
    draw.line([(left, bottom), (right, bottom)], fill=AXIS, width=SCALE)
    draw.text(((left + right) // 2, h - 4 * SCALE), x_title, fill=TEXT, font=small, anchor="md")
    if y_title:
        caption = Image.new("RGBA", (int(draw.textlength(y_title, font=small)) + 4, 16 * SCALE), (255, 255, 255, 0))
        ImageDraw.Draw(caption).text((2, 0), y_title, fill=TEXT, font=small)
        turned = caption.rotate(90, expand=True)
        im.paste(turned, (4 * SCALE, (top + bottom) // 2 - turned.height // 2), turned)
    for mark_x, label in marks:
        px, _ = at(mark_x, y_lo)
        for y0 in range(int(top), int(bottom), 8 * SCALE):
            draw.line([(px, y0), (px, min(y0 + 4 * SCALE, bottom))], fill=AXIS, width=SCALE)
        draw.text((px + 4 * SCALE, top), label, fill=MUTED, font=small, anchor="lt")
    legend_x = left
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        xy = [at(x, y) for x, y in sorted(pts)]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2 * SCALE, joint="curve")
        for px, py in xy:
            r = 3 * SCALE
            draw.ellipse([px - r, py - r, px + r, py + r], fill=colour)
        ly = 26 * SCALE
        draw.rounded_rectangle([legend_x, ly - 4 * SCALE, legend_x + 14 * SCALE, ly + 4 * SCALE], 2 * SCALE, fill=colour)
        draw.text((legend_x + 18 * SCALE, ly), name, fill=TEXT, font=small, anchor="lm")
        legend_x += 18 * SCALE + int(draw.textlength(name, font=small)) + 14 * SCALE
    return im
