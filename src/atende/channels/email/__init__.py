"""The e-mail channel: mailboxes fetched over IMAP or POP3, replies sent over SMTP."""
