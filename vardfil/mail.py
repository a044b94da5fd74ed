"""E-mail to the people of the month: one sender for the CLI, the portal, the API and the DAGs.

With ``VARDFIL_SMTP_URL`` (``smtp://[user:password@]host:port``) messages go to that server —
STARTTLS when it offers it, login when the URL names a user. Without it (the embedded default,
``scripts/sample.sh``) every message is written as an ``.eml`` file under
``$VARDFIL_HOME/outbox/`` for a person to open.

Every message is sent once: it is recorded in the ledger under a key that says what it is about
(``kvittens:KV-…``) before it is sent, and marked failed when sending fails, so a rerun, a retry
or a byte-identical copy of a file sends nothing twice, and a failure can be retried (the nightly
run does; a message failed for over an hour is an alert, ``docs/operations.md``). A failed send
never fails what caused it (a submission, a close): it is logged, without addresses or contents.

Messages are Swedish, plain text with a simple HTML part, link to the page, and never carry a
personnummer: a kvittens message gives counts per rule, not findings.
"""

from __future__ import annotations

import datetime as dt
import html
import json
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
from filespec.calendar import DEADLINE_VARDAG, STOCKHOLM, Period, is_vardag, parse_instant, to_stockholm
from validators.kvittens import Status
from vardfil.app import App
from vardfil.ledger import utcnow
from vardfil.metrics import MAILS
from vardfil.settings import Settings
from vardfil.swedish import kronor, local_time, number, percent

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
    stamp = utcnow().strftime("%Y%m%dT%H%M%S.%f")  # sorted by name is sorted by time
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
    claimed = app.ledger.outbox.claim_message(key=key, kind=kind, recipients=len(to), via=via)
    if claimed is None:
        return False
    MAILS.labels(kind, claimed).inc()
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
        app.ledger.outbox.release_message(key)
        MAILS.labels(kind, "failed").inc()
        # What and why, never to whom or what it said: addresses and contents are personal data.
        log.warning("message %s (%s) not sent: %s", key, kind, type(e).__name__)
        return False
    MAILS.labels(kind, "sent").inc()
    return True


def page_html(title: str, paragraphs: list[str], link: str, link_text: str) -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f'<!doctype html><html lang="sv"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f'<body><h1>{html.escape(title)}</h1>{body}<p><a href="{html.escape(link)}">{html.escape(link_text)}</a>'
        f"</p></body></html>"
    )


def send_page(
    app: App, *, key: str, kind: str, to: list[str], title: str, lines: list[str], link: str, link_text: str
) -> bool:
    """Send a message of paragraphs and one link, as text and as HTML (once per ``key``)."""
    return send_once(
        app,
        key=key,
        kind=kind,
        to=to,
        subject=title,
        text="\n".join(lines) + f"\n\n{link}\n",
        html_body=page_html(title, lines, link, link_text),
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
        f"Mottagen {local_time(kvittens['received_at'])}"
        + ("" if kvittens.get("on_time") is None else (", i tid." if kvittens["on_time"] else ", efter tidsgränsen.")),
        f"Rader: {number(rows['total'])}, godkända {number(rows['accepted'])}, "
        f"avvisade {number(rows['rejected'])}, med varning {number(rows['with_warnings'])}.",
    ]
    if kvittens.get("deadline") and kvittens.get("period"):
        own = parse_instant(kvittens["deadline"])
        if own != Period.parse(kvittens["period"]).deadline:  # the unit's dispens decided it
            lines.append(f"Enhetens tidsgräns för {kvittens['period']} är {local_time(own)} (dispens).")
    if kvittens.get("on_time") is False:
        lines.append("Filen kom efter tidsgränsen och räknas som en rättelse.")
    for rule, n in kvittens["counts_by_rule"].items():
        message = spec.message(rule) if spec is not None else ""
        lines.append(f"{rule} ({number(n)} st): {message}".rstrip(": "))
    title = f"Kvittens: {kvittens['file_name']} – {status}"
    text = "\n".join(lines) + f"\n\nSe hela kvittensen: {link}\n"
    return title, text, page_html(title, lines, link, "Se hela kvittensen")


def notify_submission(app: App, kvittens: dict[str, Any], unit_hsaid: str | None) -> bool:
    """Mail a new submission's kvittens to the people of its unit (once per receipt)."""
    if unit_hsaid is None:  # a file without a valid name has no unit to tell
        return False
    to = app.ledger.accounts.emails_of_unit(unit_hsaid)
    if not to:  # nobody to tell: nothing to write (most units at first; every file of a test run)
        return False
    unit = app.reference.units.get(unit_hsaid)
    subject, text, html_body = kvittens_message(app, kvittens, unit.namn if unit else unit_hsaid)
    return send_once(
        app,
        key=f"kvittens:{kvittens['receipt_id']}",
        kind="kvittens",
        to=to,
        subject=subject,
        text=text,
        html_body=html_body,
    )


# --- after the close, disputes, reminders, retries -----------------------------------------------


def _analysts(app: App) -> list[str]:
    return app.ledger.accounts.emails_of_roles(("analyst", "admin"))


def notify_close(app: App, summary: dict[str, Any]) -> int:
    """After a close: "underlaget är klart" to each unit's people, and the run summary (missing,
    late, rejected share) to the analysts. Each once per period; the number of messages sent."""
    from vardfil.delivery import period_status

    period = Period.parse(summary["period"])  # the summary is the close's JSON
    base = app.settings.base_url
    sent = 0
    # Every unit's people in one query (one a unit was 300 queries a close); a unit without
    # anyone to tell gets no message written.
    people = app.ledger.accounts.emails_of_units(sorted({u["unit_hsaid"] for u in summary["units"]}))
    for u in summary["units"]:
        to = people[u["unit_hsaid"]]
        if not to:
            continue
        unit = app.reference.units.get(u["unit_hsaid"])
        name = unit.namn if unit else u["unit_hsaid"]
        title = f"Ersättningsunderlaget för {period} är klart"
        link = f"{base}/enhet/{u['unit_hsaid']}#underlag-{period}"
        lines = [
            f"Ersättningsunderlaget för {name} ({u['file_type']}) och perioden {period} är publicerat.",
            f"Summa: {kronor(u['total'])}.",
            "Granska underlaget och godkänn det eller lämna en invändning före fastställandet.",
        ]
        if u["receipt_id"] is None:
            lines.insert(1, "Ingen fil kom in i tid: underlaget har bara de delar som inte beror på en fil.")
        sent += send_page(
            app,
            key=f"underlag:{period}:{u['unit_hsaid']}:{u['file_type']}",
            kind="underlag",
            to=to,
            title=title,
            lines=lines,
            link=link,
            link_text="Till underlaget",
        )
    status = period_status(app.ledger, app.reference, period)
    late, missing = status.late(), status.missing()
    shares = sorted(
        (
            (s.counted_file.rows_rejected / s.counted_file.rows_total, s.unit.namn)
            for s in status.units
            if s.counted_file and s.counted_file.rows_total
        ),
        reverse=True,
    )
    title = f"Perioden {period} är stängd"
    lines = [
        f"Stängd {local_time(summary['closed_at'])}, summa {kronor(summary['total'])}, "
        f"{len(summary['units'])} enheter.",
        f"Saknar fil: {', '.join(s.unit.namn for s in missing) or 'inga'}.",
        f"Sena filer (rättelse i en senare period): {', '.join(s.unit.namn for s in late) or 'inga'}.",
        f"Rättelser av tidigare perioder: {len(summary['rattelse'])}.",
    ]
    lines += [f"Störst andel avvisade rader: {name} {percent(share)}" for share, name in shares[:5] if share > 0]
    link = f"{base}/analys/{period}"
    sent += send_page(
        app,
        key=f"close:{period}",
        kind="close",
        to=_analysts(app),
        title=title,
        lines=lines,
        link=link,
        link_text="Till månadsöversikten",
    )
    return sent


def notify_dispute(app: App, *, approval_id: int, unit_hsaid: str, period: Period, comment: str | None) -> bool:
    """A unit disputed its underlag: the analysts are told (once per answer)."""
    unit = app.reference.units.get(unit_hsaid)
    name = unit.namn if unit else unit_hsaid
    title = f"Invändning mot underlaget {period}: {name}"
    lines = [f"{name} har invänt mot sitt ersättningsunderlag för {period}.", f"Kommentar: {comment or '–'}"]
    link = f"{app.settings.base_url}/analys/{period}"
    return send_page(
        app,
        key=f"dispute:{approval_id}",
        kind="dispute",
        to=_analysts(app),
        title=title,
        lines=lines,
        link=link,
        link_text="Till månadsöversikten",
    )


def send_reminders(app: App, now: dt.datetime) -> list[dict[str, str]]:
    """On the first, second and third vardag of a window (two vardagar before, one before, and the
    morning of the deadline): a reminder to each active unit without a usable file yet. Each
    reminder once per unit and day; the units reminded."""
    from vardfil.delivery import period_status

    period = Period.of_window(now)
    if not period.window.is_open(now):
        return []
    local = to_stockholm(now).date()
    first = period.window.opens.date()
    vardagar = [d for d in (first + dt.timedelta(days=i) for i in range(10)) if is_vardag(d)][:DEADLINE_VARDAG]
    if local not in vardagar:
        return []
    left = DEADLINE_VARDAG - 1 - vardagar.index(local)  # vardagar left after today
    when = {0: "i dag kl. 15.00", 1: "i morgon kl. 15.00"}.get(left, f"om {left} vardagar, kl. 15.00")
    due = []
    for s in period_status(app.ledger, app.reference, period, as_of=now).missing():
        title = f"Påminnelse: redovisningsfilen för {period} ska in {when}"
        lines = [
            f"Vi har ännu ingen godkänd redovisningsfil från {s.unit.namn} ({s.unit.filtyp}) för {period}.",
            f"Tidsgränsen är {s.deadline.astimezone(STOCKHOLM):%Y-%m-%d kl. %H.%M}.",
        ]
        link = f"{app.settings.base_url}/enhet/{s.unit.hsaid}"
        if send_page(
            app,
            key=f"reminder:{period}:{s.unit.hsaid}:{local.isoformat()}",
            kind="reminder",
            to=app.ledger.accounts.emails_of_unit(s.unit.hsaid),
            title=title,
            lines=lines,
            link=link,
            link_text="Skicka filen",
        ):
            due.append({"unit_hsaid": s.unit.hsaid, "period": str(period)})
    return due


def mail_pending(app: App, since: dt.datetime) -> int:
    """Kvittenser of files recorded since ``since`` whose message was never sent (the server was
    down): sent now. The nightly run calls it, which is how a failed send is retried."""
    sent = {m.key for m in app.ledger.outbox.sent_messages("kvittens")}
    n = 0
    for f in app.ledger.files.files_recorded_since(since):
        if f"kvittens:{f.receipt_id}" not in sent and f.unit_hsaid:
            n += notify_submission(app, json.loads(f.kvittens_json), f.unit_hsaid)
    return n


# --- the operators ----------------------------------------------------------------------------------


def notify_deadline_missed(
    app: App,
    *,
    what: str,
    dag_id: str,
    run_id: str,
    logical_date: dt.datetime | None,
    deadline: dt.datetime | None,
    state: str,
) -> bool:
    """An Airflow run was not done by its deadline (``vardfil.airflow.alerts``): the operators
    (``VARDFIL_OPERATOR_EMAIL``, else the analysts and admins) are told once per run."""
    to = list(app.settings.operator_emails) or _analysts(app)
    if what == "close" and logical_date is not None:
        period = Period.of_window(logical_date)
        title = f"Stängningen av {period} är inte klar 30 minuter efter tidsgränsen"
        first = (
            f"Körningen {run_id} av {dag_id} (tidsgräns {local_time(logical_date.isoformat())}) var inte klar "
            f"vid larmtiden {local_time(deadline.isoformat()) if deadline else ''}. Ingen enhet kan få betalt "
            "förrän perioden är stängd."
        )
    else:
        title = "Nattkörningen är inte klar klockan 06:00"
        first = (
            f"Körningen {run_id} av {dag_id} "
            f"(start {local_time(logical_date.isoformat()) if logical_date else 'okänd'}) var inte klar "
            f"vid larmtiden {local_time(deadline.isoformat()) if deadline else ''}."
        )
    lines = [
        first,
        f"Läge i Airflow när larmet gick: {state or 'okänt'}.",
        "Se driftboken (docs/operations.md, avsnittet om Airflows tidsgränslarm) för vad som ska kontrolleras.",
    ]
    return send_page(
        app,
        key=f"deadline:{dag_id}:{run_id}",
        kind="deadline",
        to=to,
        title=title,
        lines=lines,
        link=f"{app.settings.base_url}/analys",
        link_text="Öppna månadsöversikten",
    )
