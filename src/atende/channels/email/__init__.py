"""The e-mail channel: IMAP, POP3 and SMTP transports, MIME parsing, quote stripping and threading."""
