"""Who was told what, how each person wants to be told, and the work still to do."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from feed.models import Follow


class Kind(models.TextChoices):
    """Why someone is told. One notification per person per happening: the first reason wins."""

    MENTION = "mention", "You are mentioned"
    ASSIGNED = "assigned", "A task or request is assigned to you"
    REQUEST_STATUS = "request_status", "A request you raised moves on"
    REPLY = "reply", "A reply in a thread you started or follow"
    MEETING_REMINDER = "meeting_reminder", "A meeting you attend starts soon"
    TASK_DUE = "task_due", "A task of yours falls due"
    TASK_OVERDUE = "task_overdue", "A task of yours is overdue"
    REQUEST_OVERDUE = "request_overdue", "A request you have or lead the queue of is overdue"
    FOLLOWED_ACTIVITY = "followed_activity", "Activity on an account you follow"


# How a person is told: the same four choices a follow's own delivery offers (feed owns follows).
Delivery = Follow.Delivery


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # How it was to be delivered when it was made (the preference may change later).
    delivery = models.CharField(max_length=10, choices=Delivery.choices)
    activity = models.ForeignKey(
        "feed.Activity", on_delete=models.CASCADE, related_name="notifications"
    )
    account = models.ForeignKey("crm.Account", on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(max_length=300)
    # What made it, so that running the same job twice makes it once: "h:<happening id>",
    # "reminder:<activity>", "due:<activity>", "overdue:<activity>".
    source = models.CharField(max_length=60)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # Email: sent with the next batch after this time, unless read by then.
    email_due_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    digested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "source"], name="notifications_once_per_source"
            )
        ]
        indexes = [
            models.Index(fields=["recipient", "-id"], name="notifications_inbox"),
            models.Index(
                fields=["email_due_at"],
                name="notifications_email_due",
                condition=models.Q(emailed_at__isnull=True, email_due_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id} about {self.activity_id}"


class Preference(models.Model):
    """One person's choice of delivery for one kind; a missing row means the default."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    delivery = models.CharField(max_length=10, choices=Delivery.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="notifications_one_choice")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.kind} -> {self.delivery}"


class Schedule(models.Model):
    """When a person hears: their time zone, digest time and frequency, reminder lead time."""

    class Digest(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly (Mondays)"
        OFF = "off", "Never"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_schedule"
    )
    timezone = models.CharField(max_length=64, default="UTC")
    digest = models.CharField(max_length=10, choices=Digest.choices, default=Digest.DAILY)
    digest_hour = models.PositiveSmallIntegerField(default=7)
    reminder_minutes = models.PositiveSmallIntegerField(default=15)
    # The local date of the last digest sent, so that running the job twice sends one.
    last_digest_on = models.DateField(null=True, blank=True)

    def __str__(self) -> str:
        return f"schedule of {self.user_id}"


class Happening(models.Model):
    """Something in the feed that may concern people, waiting to be turned into notifications.

    Written in the transaction of the change itself, so nothing is lost between the commit and
    the Celery task: the task deletes the row in the transaction that makes the notifications, and
    a periodic sweep re-queues rows whose task never ran (a lost message, a killed worker).
    """

    what = models.CharField(max_length=20)
    activity = models.ForeignKey("feed.Activity", on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    previous_status = models.CharField(max_length=20, blank=True)
    # Who had the task or request when it happened (it may be reassigned before the task runs).
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.what} {self.activity_id}"


class SentEmail(models.Model):
    """A notification email sent: its Message-ID threads replies and later emails."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    account = models.ForeignKey(
        "crm.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    message_id = models.CharField(max_length=250, unique=True)
    subject = models.CharField(max_length=300)
    sent_at = models.DateTimeField()
    is_digest = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.message_id
