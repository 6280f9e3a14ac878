from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Real-time transport"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from realtime.channel import announce_access_changed

        def close_sockets_of(sender: object, user: object = None, **kwargs: object) -> None:
            # A logged-out browser's sockets close now, not at their next periodic re-check.
            if user is not None:
                announce_access_changed([user.pk])  # type: ignore[attr-defined]

        user_logged_out.connect(close_sockets_of, weak=False, dispatch_uid="realtime-logout")
