"""Outbound webhooks: endpoints a company registers, signed deliveries and their log."""
