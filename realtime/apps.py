from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Real-time transport"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from realtime.channel import announce_access_changed

        def close_sockets_of(
            sender: object, user: object = None, request: object = None, **kwargs: object
        ) -> None:
            # A logged-out browser's sockets close now. Django sends this signal before it
            # flushes the session, so the session key itself is announced as ended.
            session = getattr(request, "session", None)
            key = getattr(session, "session_key", None) or ""
            if user is not None:
                announce_access_changed([user.pk], ended_session=key)  # type: ignore[attr-defined]

        user_logged_out.connect(close_sockets_of, weak=False, dispatch_uid="realtime-logout")
