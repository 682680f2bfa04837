"""callvault: a self-hosted vault for Twilio call recordings."""

__version__ = "0.1.0"
