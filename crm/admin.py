"""The Django admin for CRM records. Saves go through crm.actions, like every other door."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.forms import ModelForm
from django.http import HttpRequest

from crm import actions
from crm.models import (
    Account,
    AccountDomain,
    AccountTeamMember,
    Contact,
    ContactEmail,
    Lead,
    Opportunity,
    Team,
    User,
)


def _inline_changes(formset: Any) -> list[tuple[Any, dict[str, Any]]]:
    """(initial values or None, cleaned data) of each inline row that changed or is deleted.

    Initial values, not the instance: form validation has already copied the new data onto it.

    The rows are then written by actions, not by the formset; the admin's change message only
    needs the formset's bookkeeping lists to exist.
    """
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    rows = []
    for inline_form in formset.forms:
        data = getattr(inline_form, "cleaned_data", None)
        if not data or (not inline_form.has_changed() and not data.get("DELETE")):
            continue
        rows.append((inline_form.initial if inline_form.instance.pk else None, data))
    return rows


def _changes(form: ModelForm[Any], allowed: set[str]) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in form.changed_data if name in allowed}


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (*(DjangoUserAdmin.fieldsets or ()), ("Tidings", {"fields": ("role", "team")}))
    list_display = ("username", "email", "role", "team", "is_active")
    list_filter = ("role", "team", "is_active")

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change:
            actions.user_changed(actor=request.user, user=obj, fields=list(form.changed_data))  # type: ignore[arg-type]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin[Team]):
    list_display = ("name", "region")
    filter_horizontal = ("managers",)


class AccountDomainInline(admin.TabularInline[AccountDomain, Account]):
    model = AccountDomain
    extra = 0


class AccountTeamMemberInline(admin.TabularInline[AccountTeamMember, Account]):
    model = AccountTeamMember
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin[Account]):
    list_display = ("name", "owner", "team", "industry", "region", "merged_into", "archived_at")
    list_filter = ("team", "industry", "region", "record_type")
    search_fields = ("name", "domains__domain")
    readonly_fields = ("merged_into", "archived_at", "created_at", "updated_at")
    inlines = [AccountDomainInline, AccountTeamMemberInline]

    def save_model(self, request: HttpRequest, obj: Account, form: Any, change: bool) -> None:
        actor: User = request.user  # type: ignore[assignment]
        if change:
            actions.update_account(
                actor=actor,
                account=Account.objects.get(pk=obj.pk),
                **_changes(form, actions.ACCOUNT_FIELDS),
            )
        else:
            created = actions.create_account(
                actor=actor,
                name=obj.name,
                owner=obj.owner,
                team=obj.team,
                industry=obj.industry,
                region=obj.region,
                record_type=obj.record_type,
            )
            obj.pk = created.pk

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        actor: User = request.user  # type: ignore[assignment]
        account: Account = form.instance
        for old, data in _inline_changes(formset):
            if formset.model is AccountDomain:
                if old and (data.get("DELETE") or old["domain"] != data["domain"]):
                    actions.remove_account_domain(
                        actor=actor, account=account, domain=old["domain"]
                    )
                if not data.get("DELETE"):
                    actions.add_account_domain(actor=actor, account=account, domain=data["domain"])
            elif formset.model is AccountTeamMember:
                if old and (data.get("DELETE") or old["user"] != data["user"].pk):
                    old_user = User.objects.get(pk=old["user"])
                    actions.revoke_account_access(actor=actor, account=account, user=old_user)
                if not data.get("DELETE"):
                    actions.grant_account_access(
                        actor=actor, account=account, user=data["user"], role=data.get("role", "")
                    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # accounts are merged or archived, never deleted


class ContactEmailInline(admin.TabularInline[ContactEmail, Contact]):
    model = ContactEmail
    extra = 1


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin[Contact]):
    list_display = ("__str__", "account", "title", "phone")
    search_fields = ("first_name", "last_name", "emails__address", "account__name")
    autocomplete_fields = ("account",)
    inlines = [ContactEmailInline]

    def save_model(self, request: HttpRequest, obj: Contact, form: Any, change: bool) -> None:
        actor: User = request.user  # type: ignore[assignment]
        if change:
            actions.update_contact(
                actor=actor,
                contact=Contact.objects.get(pk=obj.pk),
                **_changes(form, actions.CONTACT_FIELDS),
            )
            return
        created = actions.create_contact(
            actor=actor,
            account=obj.account,
            first_name=obj.first_name,
            last_name=obj.last_name,
            title=obj.title,
            phone=obj.phone,
        )
        obj.pk = created.pk

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        actor: User = request.user  # type: ignore[assignment]
        contact: Contact = form.instance
        for old, data in _inline_changes(formset):
            if old and (data.get("DELETE") or old["address"] != data["address"]):
                actions.remove_contact_email(actor=actor, contact=contact, address=old["address"])
            if not data.get("DELETE"):
                actions.add_contact_email(
                    actor=actor,
                    contact=contact,
                    address=data["address"],
                    is_primary=data.get("is_primary", False),
                )


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin[Opportunity]):
    list_display = ("name", "account", "stage", "amount", "close_date", "owner")
    list_filter = ("stage", "forecast_category")
    search_fields = ("name", "account__name")
    autocomplete_fields = ("account",)

    def save_model(self, request: HttpRequest, obj: Opportunity, form: Any, change: bool) -> None:
        actor: User = request.user  # type: ignore[assignment]
        if change:
            actions.update_opportunity(
                actor=actor,
                opportunity=Opportunity.objects.get(pk=obj.pk),
                **_changes(form, actions.OPPORTUNITY_FIELDS),
            )
            return
        created = actions.create_opportunity(
            actor=actor,
            account=obj.account,
            name=obj.name,
            close_date=obj.close_date,
            amount=obj.amount,
            stage=obj.stage,
            probability=obj.probability,
            forecast_category=obj.forecast_category,
            owner=obj.owner,
        )
        obj.pk = created.pk


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin[Lead]):
    list_display = ("__str__", "company", "group", "owner", "converted_account")
    list_filter = ("group",)
    search_fields = ("first_name", "last_name", "company", "email")
    readonly_fields = ("converted_account",)

    def save_model(self, request: HttpRequest, obj: Lead, form: Any, change: bool) -> None:
        actor: User = request.user  # type: ignore[assignment]
        if change:
            actions.update_lead(
                actor=actor, lead=Lead.objects.get(pk=obj.pk), **_changes(form, actions.LEAD_FIELDS)
            )
            return
        created = actions.create_lead(
            actor=actor,
            first_name=obj.first_name,
            last_name=obj.last_name,
            company=obj.company,
            email=obj.email,
            phone=obj.phone,
            group=obj.group,
            dead_reason=obj.dead_reason,
            owner=obj.owner,
        )
        obj.pk = created.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # leads are kept, dead ones included, for analysis
