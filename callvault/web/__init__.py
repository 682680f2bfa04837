"""The HTTP face of callvault: Twilio webhooks, the JSON API, playback links and server-rendered pages."""
