"""The outside world: inbound email, calendar invites, meeting notes, API tokens, webhooks.

Not built yet (see the open inbound-email issue); the app exists so the layout and the import
direction (integrations -> feed -> crm) hold from the first commit.
"""
