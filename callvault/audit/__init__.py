"""The tamper-evident audit trail: every playback link, login and deletion, hash-chained (``trail``)."""
