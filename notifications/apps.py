from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from feed import happenings
        from notifications.actions import note_happening, note_happenings

        # What happens in the feed may concern people: the rules decide, in a Celery task.
        happenings.listen(note_happening, many=note_happenings)
