"""Playback: who may hear a recording, and the seconds-lived links that let them (S3 presigned URLs, or
callvault's own signed ``/media`` URLs for the file store and proxy mode)."""
