"""The API's content negotiation (DRF's `DEFAULT_CONTENT_NEGOTIATION_CLASS`).

A module of its own: `rest_framework.views` reads the setting when it is imported, so the class
cannot live beside anything that imports DRF's views (`config.api`).
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class JSONFirstNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation, with the API's usual request answered without parsing: no
    `?format=`, no format suffix, and an Accept header that is absent, `*/*` or
    `application/json`, where the first renderer writes `application/json`. DRF's answer to
    that request is that renderer and `application/json`; parsing the header (and building
    `request.headers` to read it) was ~4 % of a timeline page's call (docs/benchmarks-feed.md).
    Every other request is negotiated by DRF."""

    PLAIN_ACCEPTS = frozenset({"*/*", "application/json"})

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        if (
            format_suffix is None
            and accept in self.PLAIN_ACCEPTS
            and renderers
            and renderers[0].media_type == "application/json"
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return renderers[0], "application/json"
        chosen: tuple[BaseRenderer, str] = super().select_renderer(
            request, renderers, format_suffix
        )
        return chosen
