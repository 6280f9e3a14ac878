"""The record that an erasure happened: who asked, when, and how many rows it changed.

It names the erased record by kind and id only, never by anything personal, and is what makes a
second erasure of the same record answer "already erased" (the lead itself is gone by then).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Erasure(models.Model):
    class Kind(models.TextChoices):
        CONTACT = "contact", "Contact"
        LEAD = "lead", "Lead"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    subject_id = models.BigIntegerField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    erased_at = models.DateTimeField()
    # Rows changed per table ({"feed_activity": 3, ...}): counts only, nothing personal.
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "subject_id"], name="privacy_erased_once")
        ]

    def __str__(self) -> str:
        return f"erasure of {self.kind} {self.subject_id}"
