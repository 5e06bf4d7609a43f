"""The API channel: a company's own systems post customer messages (``POST /v1/messages``)."""
