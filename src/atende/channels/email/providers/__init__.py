"""Inbound webhooks of e-mail providers (Mailgun, SendGrid Inbound Parse, Postmark).

Each module's ``receive(request, …)`` checks a post as its provider signs or authenticates
it and returns an ``Inbound`` whose ``mime`` is the message as RFC 822 bytes — the provider's
raw MIME, or a faithful one rebuilt from its parsed fields — so that the channel has one
intake path, the MIME parser, whatever the source. A refused post raises a ``WebhookError``
(``common``) carrying the status to answer: 401 (signature, credentials, stale timestamp,
replayed token), 400/415 (not the provider's format), 413 (over ``Limits``), 422 (a field
wrong or missing); nothing is stored before the check passes.
"""
