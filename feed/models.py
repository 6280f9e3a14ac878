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
    # Structured fields of the kinds that have them, as columns so that "open tasks", "upcoming
    # meetings" and "overdue" are plain indexed queries.
    assignee = models.ForeignKey(  # task, request
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_activities",
    )
    due_at = models.DateTimeField(null=True, blank=True)  # task, request
    done_at = models.DateTimeField(null=True, blank=True)  # task
    starts_at = models.DateTimeField(null=True, blank=True)  # meeting
    ends_at = models.DateTimeField(null=True, blank=True)  # meeting
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)  # call
    outcome = models.CharField(max_length=40, blank=True)  # call
    status = models.CharField(max_length=20, blank=True)  # request
    priority = models.CharField(max_length=10, blank=True)  # request: low, normal, high, urgent
    queue = models.ForeignKey(  # request
        "feed.RequestQueue",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="requests",
    )
    # Whatever else a kind carries (a meeting's attendees as shown and its decisions, an email's
    # headers, a change's old and new values).
    details = models.JSONField(default=dict, blank=True)
    # Who reacted how, {"like": ["alice", "bob"]}, kept by the reaction actions so that a timeline
    # page needs no query per activity.
    reaction_summary = models.JSONField(default=dict, blank=True)
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
            models.Index(fields=["parent", "occurred_at", "id"], name="feed_thread_replies"),
            # The home feed (feed.queries._HOME_PAGE_SQL): the newest live rows of all accounts,
            # read index-only, and the newest live rows of one account, read index-only per follow.
            models.Index(
                fields=["-occurred_at", "-id"],
                include=["account", "kind", "parent"],
                condition=models.Q(deleted_at__isnull=True),
                name="feed_live_recent",
            ),
            models.Index(
                fields=["account", "-occurred_at", "-id"],
                include=["parent"],
                condition=models.Q(deleted_at__isnull=True),
                name="feed_live_timeline",
            ),
            models.Index(fields=["assignee", "done_at", "due_at"], name="feed_open_work"),
            # The support queue: unresolved requests by due time, whatever the account.
            models.Index(
                fields=["due_at", "id"],
                name="feed_open_requests",
                condition=models.Q(kind="request", deleted_at__isnull=True)
                & ~models.Q(status="resolved"),
            ),
            # The dashboard's open work: unfinished tasks and unresolved requests by assignee,
            # read index-only (kind, account and id ride along): 56 ms -> 12 ms -> ~2 ms of SQL on
            # a 200-person team (docs/benchmarks-dashboard.md).
            models.Index(
                fields=["assignee", "due_at"],
                include=["kind", "account", "id"],
                name="feed_open_work_covering",
                condition=models.Q(deleted_at__isnull=True)
                & (
                    models.Q(kind="task", done_at__isnull=True)
                    | (models.Q(kind="request") & ~models.Q(status="resolved"))
                ),
            ),
            # The dashboard's activity by rep: what each person did in a period, read index-only.
            models.Index(
                fields=["author", "occurred_at"],
                include=["kind", "account", "id"],
                condition=models.Q(deleted_at__isnull=True),
                name="feed_by_author_live",
            ),
            # The dashboard's pipeline movement: the period's tracked changes, whatever the account.
            models.Index(
                fields=["occurred_at"],
                include=["account"],
                condition=models.Q(kind="change", deleted_at__isnull=True),
                name="feed_recent_changes",
            ),
        ]
        verbose_name_plural = "activities"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.account_id} #{self.pk}"

    STATUS_LABELS = {
        "open": "Open",
        "in_progress": "In progress",
        "waiting": "Waiting on customer",
        "resolved": "Resolved",
    }

    @property
    def status_label(self) -> str:
        """A request's status as people read it."""
        return self.STATUS_LABELS.get(self.status or "open", self.status)


class RequestQueue(models.Model):
    """A named support queue ("Support", "Billing") that requests are raised into.

    A queue is not a `crm.Team`: teams are sales territories that decide who sees which accounts,
    while a queue is a line of work that support staff serve across every account. Its lead hears
    of requests in it that run overdue.
    """

    name = models.CharField(max_length=80, unique=True)
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="led_queues",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# What reaches the customer: what an account's last touch, and so "going cold", is measured by.
CUSTOMER_FACING_KINDS = ("email", "meeting", "call")


class AccountTouch(models.Model):
    """When an account last had customer-facing activity (an email, meeting or call).

    A small pre-aggregated table kept by the feed's actions (`feed.actions.touches`): "going
    cold" reads one row per watched account instead of seeking three indexes per account (42 ms
    -> a few ms for a 2,000-account team). No row: never touched.
    """

    account = models.OneToOneField(
        "crm.Account", primary_key=True, on_delete=models.CASCADE, related_name="touch"
    )
    last_touch_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.account_id} touched {self.last_touch_at:%Y-%m-%d %H:%M}"


class Follow(models.Model):
    """A user following an account explicitly, or choosing what to see of one they follow.

    Owners and account-team members follow their accounts without a row here (quiet auto-follow is
    computed, so it follows ownership changes); a row for them carries only preferences.
    `feed.queries.followed_account_ids` joins both.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="follows"
    )
    account = models.ForeignKey("crm.Account", on_delete=models.CASCADE, related_name="follows")

    class Delivery(models.TextChoices):
        IN_APP = "in_app", "In the app"
        EMAIL = "email", "In the app and by email"
        DIGEST = "digest", "In the digest"
        OFF = "off", "Not at all"

    # Which activity kinds to see from this account; empty means all of them.
    kinds = models.JSONField(default=list, blank=True)
    # How news of this account reaches the user; blank keeps their general preference for
    # followed-account activity (the notifications app reads it).
    delivery = models.CharField(max_length=10, choices=Delivery.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "account"], name="feed_unique_follow")
        ]
        indexes = [
            # The follows that chose kinds, few among many: a home page of a user following
            # hundreds of accounts finds them without reading every Follow row's kinds
            # (feed.home_sql.self_contained_walk_statement).
            models.Index(
                fields=["user", "account"], name="feed_follow_picky", condition=~models.Q(kinds=[])
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} follows {self.account_id}"


class Attendee(models.Model):
    """Someone at a meeting: a colleague, a contact, or only an address."""

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="attendees")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    contact = models.ForeignKey(
        "crm.Contact", null=True, blank=True, on_delete=models.CASCADE, related_name="meetings"
    )
    email = models.EmailField(blank=True)

    def __str__(self) -> str:
        return str(self.user or self.contact or self.email)


class Revision(models.Model):
    """The text of an activity before one edit. Readers may see every revision."""

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="revisions")
    editor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    edited_at = models.DateTimeField()

    class Meta:
        ordering = ["edited_at", "id"]

    def __str__(self) -> str:
        return f"revision of {self.activity_id} at {self.edited_at:%Y-%m-%d %H:%M}"


class AuditEntry(models.Model):
    """Who deleted, moved or restored what, and when; kept when the activity is hidden."""

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="audit")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=20)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} {self.activity_id} by {self.actor_id}"


class Reaction(models.Model):
    """One person's reaction; `Activity.reaction_summary` holds the summary pages show."""

    class Kind(models.TextChoices):
        LIKE = "like", "Like"

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.LIKE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "user", "kind"], name="feed_unique_reaction"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} {self.activity_id}"


class ThreadSubscription(models.Model):
    """A user's choice about one thread: follow it, or mute it (beats any account follow)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    thread = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="subscriptions")
    is_muted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "thread"], name="feed_unique_thread_subscription"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {'mutes' if self.is_muted else 'follows'} {self.thread_id}"
