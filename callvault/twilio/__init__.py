"""Everything that talks Twilio: webhook signatures, the REST/media gateway, and the simulator."""
