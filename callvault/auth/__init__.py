"""Identities and access: users, API tokens, browser sessions, and who may hear which recording."""
