"""Charts as server-rendered SVG: shapes computed here, drawn by the template (no script, no CDN).

A chart is a list of bars, each a stack of coloured segments, scaled to the largest total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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
    def legend(self) -> list[tuple[str, str, int]]:
        """(css name, label, x) of each legend entry, spread over the width."""
        step = (self.width - 20) // max(len(self.series), 1)
        return [(name, label, 10 + i * step) for i, (name, label) in enumerate(self.series)]


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
