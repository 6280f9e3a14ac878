"""Activities: every entry of history on an account."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Activity(models.Model):
    class Kind(models.TextChoices):
        POST = "post", "Post"
        COMMENT = "comment", "Comment"
        EMAIL = "email", "Email"
        MEETING = "meeting", "Meeting"
        CALL = "call", "Call"
        TASK = "task", "Task"
        REQUEST = "request", "Request"
        CHANGE = "change", "Change"
        SYSTEM = "system", "System"

    account = models.ForeignKey("crm.Account", on_delete=models.PROTECT, related_name="activities")
    contact = models.ForeignKey(
        "crm.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )
    opportunity = models.ForeignKey(
        "crm.Opportunity",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="activities",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="activities",
    )
    # Any activity can be a thread root; replies point at it.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replies"
    )
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    # Kind-specific structure (a call's duration and outcome, a task's due date, ...).
    details = models.JSONField(default=dict, blank=True)
    # When it happened (a logged call may be in the past); the timeline is ordered by this.
    occurred_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-occurred_at", "-id"], name="feed_timeline"),
            models.Index(
                fields=["account", "kind", "-occurred_at", "-id"], name="feed_timeline_kind"
            ),
        ]
        verbose_name_plural = "activities"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.account_id} #{self.pk}"


class Follow(models.Model):
    """A user following an account explicitly.

    Owners and account-team members follow their accounts without a row here (quiet auto-follow is
    computed, so it follows ownership changes); `feed.queries.followed_account_ids` joins both.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="follows"
    )
    account = models.ForeignKey("crm.Account", on_delete=models.CASCADE, related_name="follows")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "account"], name="feed_unique_follow")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} follows {self.account_id}"
