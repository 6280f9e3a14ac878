"""Charts as server-rendered SVG: no script, no CDN.

A chart is a list of bars, each a stack of coloured segments, scaled to the largest total. The
markup is written here rather than by a template: a 200-person team's two charts are about 6,000
values, and the template engine (each value resolved and localised) spent a third of the whole
dashboard page's time on them (docs/benchmarks-dashboard.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

LEGEND_COLUMNS = 3
LEGEND_ROW = 16


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    series: str
    value: int


@dataclass(frozen=True)
class Bar:
    label: str
    y: float
    total: int
    segments: list[Segment]


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]
    series: list[tuple[str, str]]  # (css name, legend label)

    @property
    def legend(self) -> list[tuple[str, str, int, int]]:
        """(css name, label, x, y) of each legend entry: three to a row, so that long labels
        ("Requests raised") are never cut off at the chart's edge."""
        step = (self.width - 20) // LEGEND_COLUMNS
        return [
            (name, label, 10 + (i % LEGEND_COLUMNS) * step, (i // LEGEND_COLUMNS) * LEGEND_ROW)
            for i, (name, label) in enumerate(self.series)
        ]

    @property
    def legend_height(self) -> int:
        return -(-len(self.series) // LEGEND_COLUMNS) * LEGEND_ROW

    def svg(self, title: str) -> SafeString:
        """The chart as an SVG image; every text in it is escaped."""
        parts = [
            f'<div class="chart-scroll"><svg class="chart" role="img" aria-label="{escape(title)}"'
            f' viewBox="0 0 {self.width} {self.height + 8 + self.legend_height}" width="100%"'
            ' preserveAspectRatio="xMinYMin meet">'
        ]
        text_y = self.bar_height - 4
        for bar in self.bars:
            label = escape(bar.label)
            parts.append(
                f'<g transform="translate(0 {bar.y})"><text x="{self.label_width - 8}"'
                f' y="{text_y}" text-anchor="end" class="chart-label">'
                f"{escape(Truncator(bar.label).chars(20))}</text>"
            )
            for s in bar.segments:
                parts.append(
                    f'<rect x="{s.x}" y="0" width="{s.width}" height="{self.bar_height}"'
                    f' class="series-{s.series}"><title>{label}: {s.value}'
                    f" {s.series.replace('_', '')}</title></rect>"
                )
            end = bar.segments[-1].x + bar.segments[-1].width if bar.segments else self.label_width
            parts.append(
                f'<text x="{end + 4:g}" y="{text_y}" class="chart-total">{bar.total}</text></g>'
            )
        parts.append(f'<g transform="translate(0 {self.height + 6})" class="chart-legend">')
        for name, legend, x, y in self.legend:
            parts.append(
                f'<g transform="translate({x} {y})"><rect width="10" height="10"'
                f' class="series-{name}"/><text x="14" y="10">{escape(legend)}</text></g>'
            )
        parts.append("</g></svg></div>")
        return mark_safe("".join(parts))  # noqa: S308 - built above, every text escaped


def stacked_bars(
    rows: Sequence[tuple[str, Sequence[int]]],
    series: Sequence[tuple[str, str]],
    *,
    width: int = 640,
    label_width: int = 140,
    bar_height: int = 18,
    gap: int = 8,
) -> Chart:
    """Horizontal stacked bars, one per row: `rows` are (label, one value per series)."""
    room = width - label_width - 40
    largest = max((sum(values) for _, values in rows), default=0) or 1
    bars = []
    for index, (label, values) in enumerate(rows):
        x = float(label_width)
        segments = []
        for (name, _), value in zip(series, values, strict=True):
            length = room * value / largest
            if value:
                segments.append(
                    Segment(x=round(x, 1), width=round(length, 1), series=name, value=value)
                )
            x += length
        bars.append(
            Bar(label=label, y=index * (bar_height + gap), total=sum(values), segments=segments)
        )
    height = max(len(rows), 1) * (bar_height + gap)
    return Chart(width, height, label_width, bar_height, bars, list(series))
