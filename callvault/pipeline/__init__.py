"""The custody pipeline: intake of callbacks, then claim → fetch → store → verify → delete at Twilio."""
