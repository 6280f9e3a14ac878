"""The API's content negotiation (`config.negotiation.JSONFirstNegotiation`): DRF's answer for every
request, with the usual one answered without parsing the Accept header."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer, TemplateHTMLRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from config.negotiation import JSONFirstNegotiation
from tests.conftest import Cast, client_for

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "application/*",
    "text/html",
    "text/html, */*;q=0.1",
    "",
    "application/xml",
]
RENDERER_LISTS = [
    [JSONRenderer()],
    [JSONRenderer(), BrowsableAPIRenderer()],
    [TemplateHTMLRenderer(), JSONRenderer()],
]


def _answer(negotiation: DefaultContentNegotiation, request: Request, renderers: list) -> object:
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers)
    except NotAcceptable:
        return "406"
    except Http404:  # a `?format=` no renderer writes
        return "404"
    return type(renderer), media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api", "?other=1"])
def test_the_api_negotiates_as_drf_does(accept: str | None, query: str) -> None:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    for renderers in RENDERER_LISTS:
        request = Request(APIRequestFactory().get(f"/api/v1/feed/{query}", **headers))
        ours = _answer(JSONFirstNegotiation(), request, renderers)
        drf = _answer(DefaultContentNegotiation(), request, renderers)
        assert ours == drf, (accept, query, renderers)


def test_a_page_that_cannot_be_written_as_asked_is_406(cast: Cast) -> None:
    client = client_for(cast.teammate)
    assert client.get("/api/v1/feed/", HTTP_ACCEPT="text/html").status_code == 406
    assert client.get("/api/v1/feed/", HTTP_ACCEPT="*/*").status_code == 200
    assert client.get("/api/v1/feed/?format=json").status_code == 200
