"""E-mail to the people of the month: one sender for the CLI, the portal, the API and the DAGs.

With ``VARDFIL_SMTP_URL`` (``smtp://[user:password@]host:port``) messages go to that server —
STARTTLS when it offers it, login when the URL names a user. Without it (the embedded default,
``scripts/sample.sh``) every message is written as an ``.eml`` file under
``$VARDFIL_HOME/outbox/`` for a person to open.

Every message is sent once: it is recorded in the ledger under a key that says what it is about
(``kvittens:KV-…``) before it is sent, and released again when sending fails, so a rerun, a retry
or a byte-identical copy of a file sends nothing twice, and a failure can be retried. A failed send
never fails what caused it (a submission, a close): it is logged, without addresses or contents.

Messages are Swedish, plain text with a simple HTML part, link to the page, and never carry a
personnummer: a kvittens message gives counts per rule, not findings.
"""

from __future__ import annotations

import html
import logging
import secrets
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from filespec import spec_for
from validators.kvittens import Status
from vardfil.app import App
from vardfil.ledger import utcnow
from vardfil.settings import Settings

log = logging.getLogger("vardfil.mail")


def _deliver_smtp(settings: Settings, msg: EmailMessage) -> None:
    url = urlsplit(settings.smtp_url or "")
    if url.scheme != "smtp" or not url.hostname:
        raise ValueError("VARDFIL_SMTP_URL must be smtp://[user:password@]host:port")
    with smtplib.SMTP(url.hostname, url.port or 25, timeout=30) as smtp:
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if url.username:
            smtp.login(unquote(url.username), unquote(url.password or ""))
        smtp.send_message(msg)


def _deliver_outbox(settings: Settings, msg: EmailMessage, kind: str) -> Path:
    outbox = settings.home / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")
    path = outbox / f"{stamp}-{kind}-{secrets.token_hex(4)}.eml"
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_bytes(bytes(msg))
    tmp.replace(path)
    return path


def outbox_of(settings: Settings) -> Path:
    """Where messages are written when no SMTP server is configured."""
    return settings.home / "outbox"


def send_once(app: App, *, key: str, kind: str, to: list[str], subject: str, text: str, html_body: str) -> bool:
    """Send one message to ``to`` unless a message with ``key`` was sent already; True when sent
    now. Never raises for a failed delivery (logged; the record is released for a retry)."""
    to = sorted({a for a in to if a})
    if not to:
        return False
    settings = app.settings
    via = "smtp" if settings.smtp_url else "outbox"
    if not app.ledger.claim_message(key=key, kind=kind, recipients=len(to), via=via):
        return False
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="vardfil")
    msg.set_content(text)
    msg.add_alternative(html_body, subtype="html")
    try:
        if via == "smtp":
            _deliver_smtp(settings, msg)
        else:
            _deliver_outbox(settings, msg, kind)
    except (OSError, smtplib.SMTPException, ValueError) as e:
        app.ledger.release_message(key)
        # What and why, never to whom or what it said: addresses and contents are personal data.
        log.warning("message %s (%s) not sent: %s", key, kind, type(e).__name__)
        return False
    return True


def _page(title: str, paragraphs: list[str], link: str, link_text: str) -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f'<!doctype html><html lang="sv"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f'<body><h1>{html.escape(title)}</h1>{body}<p><a href="{html.escape(link)}">{html.escape(link_text)}</a>'
        f"</p></body></html>"
    )


def kvittens_message(app: App, kvittens: dict[str, Any], unit_name: str) -> tuple[str, str, str]:
    """Subject, text and HTML of a kvittens: status, rows, counts per rule with their messages and
    the link to the kvittens page. No findings: they may show patient data."""
    status = Status(kvittens["status"]).label
    link = f"{app.settings.base_url}/kvittens/{kvittens['receipt_id']}"
    spec = spec_for(kvittens["file_type"], kvittens["period"]) if kvittens.get("file_type") else None
    rows = kvittens["rows"]
    lines = [
        f"Filen {kvittens['file_name']} från {unit_name} är mottagen.",
        f"Status: {status}. Kvittens: {kvittens['receipt_id']}.",
        f"Rader: {rows['total']}, godkända {rows['accepted']}, avvisade {rows['rejected']}, "
        f"med varning {rows['with_warnings']}.",
    ]
    if kvittens.get("on_time") is False:
        lines.append("Filen kom efter tidsgränsen och räknas som en rättelse.")
    for rule, n in kvittens["counts_by_rule"].items():
        message = spec.message(rule) if spec is not None else ""
        lines.append(f"{rule} ({n} st): {message}".rstrip(": "))
    title = f"Kvittens: {kvittens['file_name']} – {status}"
    text = "\n".join(lines) + f"\n\nSe hela kvittensen: {link}\n"
    return title, text, _page(title, lines, link, "Se hela kvittensen")


def notify_submission(app: App, kvittens: dict[str, Any], unit_hsaid: str | None) -> bool:
    """Mail a new submission's kvittens to the people of its unit (once per receipt)."""
    if unit_hsaid is None:  # a file without a valid name has no unit to tell
        return False
    unit = app.reference.units.get(unit_hsaid)
    subject, text, html_body = kvittens_message(app, kvittens, unit.namn if unit else unit_hsaid)
    return send_once(
        app,
        key=f"kvittens:{kvittens['receipt_id']}",
        kind="kvittens",
        to=app.ledger.accounts.emails_of_unit(unit_hsaid),
        subject=subject,
        text=text,
        html_body=html_body,
    )
