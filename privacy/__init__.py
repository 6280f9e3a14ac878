"""Privacy: export and erasure of one person's data (a contact or a lead), docs/privacy.md."""
