"""E-mails atende itself sends to people: password-reset links and invitations.

An e-mail is queued as a job (``mail:send``) in the transaction that made its link, so a
rolled-back request sends nothing and a committed one sends exactly once, retried with
backoff while the SMTP server is unreachable. The job's arguments hold the message encrypted
with ``ATENDE_SECRET_KEY``: they are visible to whoever lists failed jobs, and a link in them
signs its holder in. Without ``ATENDE_SMTP_HOST`` the message, link included, is written to
the log instead (``mail.not_sent``), which is how a development machine gets its links.
"""
