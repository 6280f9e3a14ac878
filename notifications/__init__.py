"""Who hears what and how: rules, preferences, inbox, email and digest delivery, reminders.

Not built yet (see the open notifications issue); the app exists so the layout and the import
direction (notifications -> feed -> crm) hold from the first commit.
"""
