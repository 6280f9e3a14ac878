from django.apps import AppConfig


class FeedConfig(AppConfig):
    name = "feed"
    verbose_name = "Feed"

    def ready(self) -> None:
        from feed import streams

        streams.register_streams()
