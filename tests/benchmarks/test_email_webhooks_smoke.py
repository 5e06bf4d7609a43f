"""``benchmarks/email_webhooks.py`` on two messages written here (pt-BR with an HTML
alternative, an inline image and a PDF; es in Latin-1): each comes back from all three
providers' formats identical in every field, and the report and JSON are written."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

from benchmarks.email_webhooks import main

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4


def write_messages(folder: Path) -> None:
    rich = EmailMessage()
    rich["From"] = "João Conceição <joao@example.com.br>"
    rich["To"] = "Atendimento <suporte@loja.com.br>"
    rich["Cc"] = "María Peña <maria@example.es>"
    rich["Subject"] = "Re: Pedido nº 4521 — não chegou"
    rich["Message-ID"] = "<a1@mail.example.com.br>"
    rich["In-Reply-To"] = "<atende.1@loja.com.br>"
    rich["References"] = "<atende.0@loja.com.br> <atende.1@loja.com.br>"
    rich["Date"] = "Mon, 07 Dec 2026 09:15:02 -0300"
    rich.set_content("Olá! Meu pedido não chegou.\n")
    rich.add_alternative('<p>Olá! Meu pedido <b>não chegou</b>.</p><img src="cid:logo">', subtype="html")
    rich.get_payload()[1].add_related(b"\x89PNG\r\n\x1a\n\x00", "image", "png", cid="<logo>")
    rich.add_attachment(PDF, "application", "pdf", filename="nota-fiscal-nº4521.pdf")
    (folder / "rich.eml").write_bytes(bytes(rich))
    (folder / "latin1.eml").write_bytes(
        b"From: =?iso-8859-1?q?Jos=E9?= <jose@example.es>\nTo: suporte@loja.com.br\n"
        b"Subject: =?iso-8859-1?q?Informaci=F3n?=\nMessage-ID: <b2@example.es>\n"
        b"Date: Mon, 07 Dec 2026 10:00:00 +0100\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n"
        b"\xbfD\xf3nde est\xe1 mi pedido?\n"
    )
    (folder / "notes.txt").write_text("not an e-mail: no headers\n")


def test_real_messages_survive_every_provider_format(tmp_path: Path) -> None:
    write_messages(tmp_path)
    out = tmp_path / "result.json"
    main([str(tmp_path), "--seconds", "0.2", "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["messages"] == 2
    assert result["differences"] == []
    for provider in ("mailgun", "sendgrid", "postmark"):
        assert set(result["identical"][provider].values()) == {2}, provider
        assert result["messages_per_second"][provider] > 0
