"""The privacy API: export and erase one contact's or lead's data. Administrators only; to anyone
else every id here is 404, like one that does not exist."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import json_object, request_user
from crm.models import Contact, Lead
from privacy import actions, queries
from privacy.actions import Erased
from privacy.redaction import Person

ZIP_PARAMETER = OpenApiParameter(
    "attachments",
    str,
    enum=["zip"],
    description="`zip`: a zip of export.json and the attachments the person sent.",
)
ERASE_REQUEST = inline_serializer(
    "EraseRequest",
    {"confirm": serializers.BooleanField(help_text="Must be true: erasure cannot be undone.")},
)
ERASE_RESPONSE = inline_serializer(
    "Erasure",
    {
        "status": serializers.ChoiceField(choices=["erased", "already_erased"]),
        "erased_at": serializers.DateTimeField(),
        "counts": serializers.DictField(child=serializers.IntegerField()),
    },
)


def export_zip(document: dict[str, Any], person: Person) -> bytes:
    """export.json and, under attachments/, each attachment the person sent (by id and name)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export.json", json.dumps(document, cls=DjangoJSONEncoder, indent=2))
        for attachment in queries.attachments_of(person):
            # The sender's file name may be a path: only its last part, after the id.
            name = attachment.filename.replace("\\", "/").rsplit("/", 1)[-1] or "attachment"
            with attachment.file.open("rb") as content:
                archive.writestr(f"attachments/{attachment.pk}-{name}", content.read())
    return buffer.getvalue()


def _export_response(request: Request, person: Person, record: Contact | Lead) -> Any:
    document = queries.export(person, record)
    if request.query_params.get("attachments") == "zip":
        response = HttpResponse(export_zip(document, person), content_type="application/zip")
        name = f"{person.kind}-{person.pk}-export.zip"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    return Response(document)


def _erasure_response(request: Request, erase: Any) -> Response:
    if json_object(request).get("confirm") is not True:
        raise ApiValidationError(
            {"confirm": ['Erasure cannot be undone: send {"confirm": true} to go ahead.']}
        )
    done: Erased = erase()
    return Response(
        {
            "status": "erased" if done.is_new else "already_erased",
            "erased_at": done.erasure.erased_at,
            "counts": done.erasure.counts,
        }
    )


class ContactExportView(APIView):
    """Everything stored about a contact, as one JSON document (or a zip with attachments)."""

    @extend_schema(parameters=[ZIP_PARAMETER], responses={200: dict})
    def get(self, request: Request, contact_id: int) -> Any:
        contact = queries.get_erasable_contact(request_user(request), contact_id)
        return _export_response(request, queries.person_of(contact), contact)


class LeadExportView(APIView):
    """Everything stored about a lead, as one JSON document (or a zip with attachments)."""

    @extend_schema(parameters=[ZIP_PARAMETER], responses={200: dict})
    def get(self, request: Request, lead_id: int) -> Any:
        lead = queries.get_erasable_lead(request_user(request), lead_id)
        return _export_response(request, queries.person_of(lead), lead)


class ContactEraseView(APIView):
    """Erase a contact's personal data everywhere; a second call answers "already_erased"."""

    @extend_schema(request=ERASE_REQUEST, responses={200: ERASE_RESPONSE})
    def post(self, request: Request, contact_id: int) -> Response:
        me = request_user(request)
        queries.get_erasable_contact(me, contact_id)
        return _erasure_response(
            request, lambda: actions.erase_contact(actor=me, contact_id=contact_id)
        )


class LeadEraseView(APIView):
    """Erase a lead's personal data everywhere and delete the lead (dead leads included: the only
    way one goes away); a second call answers "already_erased"."""

    @extend_schema(request=ERASE_REQUEST, responses={200: ERASE_RESPONSE})
    def post(self, request: Request, lead_id: int) -> Response:
        me = request_user(request)
        queries.require_admin(me)
        return _erasure_response(request, lambda: actions.erase_lead(actor=me, lead_id=lead_id))
