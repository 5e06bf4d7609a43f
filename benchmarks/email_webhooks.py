"""E-mail provider webhooks: how faithfully a message survives being posted as a provider's
parsed fields and rebuilt as MIME (``channels.email.providers``), and how fast.

Every complete message (a file with ``From:`` or ``Message-ID:`` headers) under the given
folders — by default ``../shared/data/email`` — is taken apart as each provider does it:
Mailgun's form (``message-headers`` JSON, ``body-plain``, ``body-html``, ``attachment-N``
files), SendGrid's Inbound Parse form (the raw ``headers`` block, ``text``, ``html``,
``attachmentN`` with ``attachment-info``) and Postmark's JSON (``Headers``, ``FromFull``…,
``TextBody``, ``HtmlBody``, base64 ``Attachments``); the form is encoded by httpx and parsed
by the providers' own form parser; the message rebuilt; and both read by Python's e-mail
parser and compared: subject, From, To, Cc, Message-ID, In-Reply-To, References, Date, the
plain and HTML bodies (line ends normalised) and every attachment's bytes. Then each form is
converted again and again for ``--seconds`` to give messages per second per provider.

Run from the project root: ``.venv/bin/python -m benchmarks.email_webhooks --help``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx

from atende.channels.email.providers import mailgun, postmark, sendgrid
from atende.channels.email.providers.common import Limits, parse_form
from benchmarks.common import DEFAULT_DATA, console, machine, result_table, write_json

HEADERS = ("subject", "from", "to", "cc", "message-id", "in-reply-to", "references", "date")
LIMITS = Limits(max_attachments=1000)


def messages(folders: list[Path]) -> list[tuple[str, bytes]]:
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            raw = path.read_bytes()
            head = b"\n" + raw[:4000].lower()
            if b"\nfrom:" in head or b"\nmessage-id:" in head:
                found.append((str(path.relative_to(folder)), raw))
    return found


def read(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def _text(part: MIMEPart | None) -> str:
    """A body, line ends normalised; none is "" (the providers' fields cannot say "none")."""
    return "" if part is None else str(part.get_content()).replace("\r\n", "\n").rstrip("\n")


def pieces(message: EmailMessage) -> dict[str, Any]:
    found: dict[str, Any] = {n: None if message[n] is None else str(message[n]).strip() for n in HEADERS}
    found["text"] = _text(message.get_body(("plain",)))
    found["html"] = _text(message.get_body(("html",)))
    found["attachments"] = sorted(_bytes(part) for part in _files(message))
    return found


def _files(message: EmailMessage) -> list[EmailMessage]:
    return [part for part in message.iter_attachments() if not part.is_multipart()]


def _bytes(part: EmailMessage) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _file_fields(prefix: str, message: EmailMessage) -> list[tuple[str, Any]]:
    return [
        (f"{prefix}{i}", (part.get_filename() or "file", _bytes(part), part.get_content_type()))
        for i, part in enumerate(_files(message), 1)
    ]


def as_mailgun(message: EmailMessage, original: dict[str, Any]) -> Callable[[], bytes]:
    fields = {
        "message-headers": json.dumps([[k, str(v)] for k, v in message.items()]),
        "body-plain": original["text"],
        "attachment-count": str(len(_files(message))),
        "sender": "sender@example.com",
    }
    if original["html"]:
        fields["body-html"] = original["html"]
    files = _file_fields("attachment-", message)
    request = httpx.Request("POST", "http://atende.test/", data=fields, files=files or None)
    body, content_type = request.read(), request.headers["content-type"]
    return lambda: mailgun.message_of(parse_form(content_type, body, LIMITS), LIMITS)[0]


def as_sendgrid(raw: bytes, message: EmailMessage, original: dict[str, Any]) -> Callable[[], bytes]:
    block = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    parts = _files(message)
    fields: dict[str, Any] = {
        "headers": block,
        "text": original["text"].encode(),
        "envelope": json.dumps({"to": ["inbox@example.com"], "from": "sender@example.com"}),
        "attachments": str(len(parts)),
        "attachment-info": json.dumps(
            {
                f"attachment{i}": {"filename": part.get_filename() or "file", "type": part.get_content_type()}
                for i, part in enumerate(parts, 1)
            }
        ),
        "charsets": json.dumps({"text": "utf-8", "html": "utf-8"}),
    }
    if original["html"]:
        fields["html"] = original["html"].encode()
    files: list[tuple[str, Any]] = [
        (name, (None, value, None)) for name, value in fields.items()
    ]  # multipart
    files += _file_fields("attachment", message)
    request = httpx.Request("POST", "http://atende.test/", files=files)
    body, content_type = request.read(), request.headers["content-type"]
    return lambda: sendgrid.message_of(parse_form(content_type, body, LIMITS), LIMITS)[0]


def as_postmark(message: EmailMessage, original: dict[str, Any]) -> Callable[[], bytes]:
    top = {"From": "from", "To": "to", "Cc": "cc", "Subject": "subject", "Date": "date"}
    payload = {
        **{field: str(message[name] or "") for field, name in top.items()},
        "TextBody": original["text"],
        "HtmlBody": original["html"],
        "Headers": [{"Name": k, "Value": str(v)} for k, v in message.items()],
        "Attachments": [
            {
                "Name": part.get_filename() or "file",
                "Content": base64.b64encode(_bytes(part)).decode(),
                "ContentType": part.get_content_type(),
            }
            for part in _files(message)
        ],
    }
    body = json.dumps(payload).encode()
    return lambda: postmark.message_of(json.loads(body), LIMITS)[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, default=[DEFAULT_DATA / "email"])
    parser.add_argument("--seconds", type=float, default=3.0, help="conversion timing per provider")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    found = messages(args.folders)
    if not found:
        parser.error(f"no complete messages under {', '.join(map(str, args.folders))}")
    fields = [*HEADERS, "text", "html", "attachments"]
    same: dict[str, dict[str, int]] = {
        p: dict.fromkeys(fields, 0) for p in ("mailgun", "sendgrid", "postmark")
    }
    differences: list[str] = []
    converters: dict[str, list[Callable[[], bytes]]] = {p: [] for p in same}
    for name, raw in found:
        message = read(raw)
        original = pieces(message)
        built = {
            "mailgun": as_mailgun(message, original),
            "sendgrid": as_sendgrid(raw, message, original),
            "postmark": as_postmark(message, original),
        }
        for provider, convert in built.items():
            converters[provider].append(convert)
            rebuilt = pieces(read(convert()))
            for field in fields:
                if rebuilt[field] == original[field]:
                    same[provider][field] += 1
                else:
                    differences.append(
                        f"{provider} {name} {field}: {original[field]!r:.60} → {rebuilt[field]!r:.60}"
                    )
    rate = {}
    for provider, convert_all in converters.items():
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            for convert in convert_all:
                convert()
            done += len(convert_all)
        rate[provider] = done / (time.perf_counter() - start)
    total = len(found)
    console.print(
        result_table(
            f"Rebuilt messages identical to the original ({total} messages)",
            ["provider", *fields, "messages/s"],
            [[p, *(f"{same[p][f]}/{total}" for f in fields), f"{rate[p]:.0f}"] for p in same],
        )
    )
    for line in differences[:40]:
        console.print(f"[dim]{line}[/dim]")
    write_json(
        args.json,
        {
            "messages": total,
            "identical": same,
            "messages_per_second": rate,
            "differences": differences,
            "machine": machine(load),
        },
    )


if __name__ == "__main__":
    main()
