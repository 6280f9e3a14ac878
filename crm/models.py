"""CRM records the feed attaches to: teams and people, accounts, contacts, opportunities, leads.

Models hold data and its constraints only; every change goes through `crm.actions`.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower


class Team(models.Model):
    name = models.CharField(max_length=80, unique=True)
    region = models.CharField(max_length=80, blank=True)
    managers = models.ManyToManyField("crm.User", related_name="managed_teams", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    class Role(models.TextChoices):
        REP = "rep", "Sales rep"
        SUPPORT = "support", "Support"
        MANAGER = "manager", "Manager"
        ADMIN = "admin", "Administrator"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.REP)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    @property
    def is_admin(self) -> bool:
        return self.is_superuser or self.role == self.Role.ADMIN


class Account(models.Model):
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="owned_accounts")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="accounts")
    industry = models.CharField(max_length=80, blank=True)
    region = models.CharField(max_length=80, blank=True)
    record_type = models.CharField(max_length=40, default="customer")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Accounts are never hard-deleted by users: a merged account points at its survivor and an
    # archived one keeps its history.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_from"
    )
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(Lower("name"), name="crm_account_lower_name")]

    def __str__(self) -> str:
        return self.name


class AccountDomain(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, unique=True)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class AccountTeamMember(models.Model):
    """A grant: this user works on this account whatever their own team is."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="team_members")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="account_grants")
    role = models.CharField(max_length=60, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="crm_unique_account_member")
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.account}"


class Contact(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="contacts")
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80, blank=True)
    title = models.CharField(max_length=120, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["last_name", "first_name", "id"]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class ContactEmail(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="emails")
    address = models.EmailField(max_length=254)
    is_primary = models.BooleanField(default=False)

    class Meta:
        ordering = ["-is_primary", "address"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "address"], name="crm_unique_contact_address"
            )
        ]
        indexes = [models.Index(fields=["address"])]

    def __str__(self) -> str:
        return self.address


class Opportunity(models.Model):
    class Stage(models.TextChoices):
        PROSPECTING = "prospecting", "Prospecting"
        QUALIFICATION = "qualification", "Qualification"
        PROPOSAL = "proposal", "Proposal"
        NEGOTIATION = "negotiation", "Negotiation"
        CLOSED_WON = "closed_won", "Closed won"
        CLOSED_LOST = "closed_lost", "Closed lost"

    class Forecast(models.TextChoices):
        PIPELINE = "pipeline", "Pipeline"
        BEST_CASE = "best_case", "Best case"
        COMMIT = "commit", "Commit"
        CLOSED = "closed", "Closed"
        OMITTED = "omitted", "Omitted"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="opportunities")
    name = models.CharField(max_length=200)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.PROSPECTING)
    forecast_category = models.CharField(
        max_length=20, choices=Forecast.choices, default=Forecast.PIPELINE
    )
    probability = models.PositiveSmallIntegerField(default=10)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    close_date = models.DateField()
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="opportunities")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["close_date", "id"]
        verbose_name_plural = "opportunities"

    def __str__(self) -> str:
        return self.name


class Lead(models.Model):
    class Group(models.TextChoices):
        LIVE = "live", "Live (asked for information)"
        NAMES = "names", "Names (a fit, never asked)"
        DEAD = "dead", "Dead (disqualified or unreachable)"

    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80, blank=True)
    company = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    group = models.CharField(max_length=8, choices=Group.choices, default=Group.NAMES)
    dead_reason = models.CharField(max_length=200, blank=True)
    owner = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    converted_account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.PROTECT, related_name="converted_leads"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["company", "id"]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} ({self.company})".strip()

    @property
    def is_dead(self) -> bool:
        return self.group == self.Group.DEAD
