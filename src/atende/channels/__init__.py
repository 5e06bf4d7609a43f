"""Channel adapters. Each turns its wire format into ``InboundMessage`` and delivers replies;
nothing channel-specific leaks past its folder."""
