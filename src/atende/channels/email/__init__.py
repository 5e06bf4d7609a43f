"""The e-mail channel: mailboxes fetched over IMAP or POP3 or posted by a provider's webhook,
MIME parsing, quote stripping and threading, replies sent over SMTP."""
