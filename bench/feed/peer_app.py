"""Registers the actor (User) and target (Account) models with actstream, as its docs ask."""

from django.apps import AppConfig


class PeerConfig(AppConfig):
    name = "bench.feed"
    label = "bench_feed_peer"

    def ready(self) -> None:
        from actstream import registry

        registry.register("crm.User", "crm.Account")
