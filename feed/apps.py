from django.apps import AppConfig


class FeedConfig(AppConfig):
    name = "feed"
    verbose_name = "Feed"

    def ready(self) -> None:
        from crm import changes
        from feed import streams
        from feed.actions.history import record_field_changes

        streams.register_streams()
        # Tracked CRM field changes become `change` activities, through whichever door they came.
        changes.listen(record_field_changes)
