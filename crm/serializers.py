"""JSON shapes of CRM records for the API (read-only: writes go through crm.actions)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from crm.models import Account, Contact, Opportunity, User


class OwnerSerializer(serializers.ModelSerializer[User]):
    display_name = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "display_name"]
        read_only_fields = fields


class AccountListSerializer(serializers.ModelSerializer[Account]):
    owner = OwnerSerializer(read_only=True)
    team = serializers.CharField(source="team.name", read_only=True)
    domains: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="domain", many=True, read_only=True
    )

    class Meta:
        model = Account
        fields = ["id", "name", "owner", "team", "industry", "region", "record_type", "domains"]
        read_only_fields = fields


class ContactSerializer(serializers.ModelSerializer[Contact]):
    emails: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="address", many=True, read_only=True
    )
    name = serializers.CharField(source="full_name", read_only=True)

    class Meta:
        model = Contact
        fields = ["id", "name", "first_name", "last_name", "title", "phone", "emails"]
        read_only_fields = fields


class OpportunitySerializer(serializers.ModelSerializer[Opportunity]):
    owner = OwnerSerializer(read_only=True)

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "name",
            "stage",
            "forecast_category",
            "probability",
            "amount",
            "close_date",
            "owner",
        ]
        read_only_fields = fields


class AccountDetailSerializer(AccountListSerializer):
    contacts = ContactSerializer(many=True, read_only=True)
    opportunities = OpportunitySerializer(many=True, read_only=True)

    class Meta(AccountListSerializer.Meta):
        fields = [
            *AccountListSerializer.Meta.fields,
            "created_at",
            "updated_at",
            "contacts",
            "opportunities",
        ]
        read_only_fields = fields
