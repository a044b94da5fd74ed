"""E-mail that arrives: against a real SMTP server started here (aiosmtpd), and the outbox when no
server is configured. Each message is sent once; a failed send never fails the submission."""

from __future__ import annotations

import email
import json
import logging
import re
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from conftest import cli
from server_support import free_port

from sample_data import SAMPLE_DIR

UNIT = "SE2321000131-E000000001001"
FILE = SAMPLE_DIR / "files" / f"VGP_{UNIT}_202610_01.csv"
AT = "2026-11-02T09:15:00+01:00"


class Inbox(Message):
    """What the test SMTP server received."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[email.message.EmailMessage] = []

    def handle_message(self, message) -> None:  # type: ignore[no-untyped-def]
        self.messages.append(email.message_from_bytes(bytes(message), policy=policy.default))


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


@pytest.fixture
def unit_with_mail(app_env, monkeypatch):
    monkeypatch.setenv("VARDFIL_PASSWORD", "korrekt-hast-batteri")
    code, _ = cli("user", "add", "anna", "--role", "unit", "--hsaid", UNIT, "--email", "anna@ekbacken.example")
    assert code == 0
    return app_env


def _text(msg: email.message.EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def test_a_submission_mails_its_kvittens_once(unit_with_mail, smtp, monkeypatch):
    inbox, url = smtp
    monkeypatch.setenv("VARDFIL_SMTP_URL", url)
    _code, out = cli("submit", str(FILE), "--received-at", AT)
    receipt = json.loads(out)["receipt_id"]
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["To"] == "anna@ekbacken.example" and receipt in _text(msg)
    assert "Delvis godkänd" in msg["Subject"] and f"/kvittens/{receipt}" in _text(msg)
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert f"/kvittens/{receipt}" in html and 'lang="sv"' in html
    # The byte-identical copy is not a submission: nothing more is sent.
    cli("submit", str(FILE), "--received-at", "2026-11-02T10:00:00+01:00")
    assert len(inbox.messages) == 1


def test_no_personnummer_in_a_kvittens_message(unit_with_mail, smtp, monkeypatch):
    from conftest import ADULT_MAN, file_name, make_file

    inbox, url = smtp
    monkeypatch.setenv("VARDFIL_SMTP_URL", url)
    path = unit_with_mail.home / file_name()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make_file(rows=[{"patient_id": ADULT_MAN[:-1] + "0"}, {"diagnos_2": ADULT_MAN}]))
    cli("submit", str(path), "--received-at", AT)
    (msg,) = inbox.messages
    assert ADULT_MAN not in msg.as_string() and ADULT_MAN[:-1] + "0" not in msg.as_string()
    assert "R21" in _text(msg)


def test_without_smtp_the_message_is_an_eml_in_the_outbox(unit_with_mail, monkeypatch):
    monkeypatch.delenv("VARDFIL_SMTP_URL", raising=False)
    _code, out = cli("submit", str(FILE), "--received-at", AT)
    receipt = json.loads(out)["receipt_id"]
    (eml,) = (unit_with_mail.home / "outbox").glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert receipt in _text(msg) and msg["To"] == "anna@ekbacken.example"


def test_a_failed_send_never_fails_the_submission_and_is_released(unit_with_mail, monkeypatch, caplog):
    from vardfil.app import open_app

    monkeypatch.setenv("VARDFIL_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")  # nobody listens
    with caplog.at_level(logging.WARNING, logger="vardfil.mail"):
        code, out = cli("submit", str(FILE), "--received-at", AT)
    assert code == 0 and json.loads(out)["status"] == "DELVIS_GODKAND"
    assert "not sent" in caplog.text and "anna@" not in caplog.text  # logged, without the address
    with open_app(unit_with_mail) as app:
        assert app.ledger.outbox.sent_messages() == []  # released: a retry may send it


def test_a_unit_without_addresses_gets_nothing_and_nothing_is_recorded(app_env, smtp, monkeypatch):
    from vardfil.app import open_app

    inbox, url = smtp
    monkeypatch.setenv("VARDFIL_SMTP_URL", url)
    cli("submit", str(FILE), "--received-at", AT)
    assert inbox.messages == []
    with open_app(app_env) as app:
        assert app.ledger.outbox.sent_messages() == []


def test_a_bad_address_is_refused(app_env, monkeypatch):
    monkeypatch.setenv("VARDFIL_PASSWORD", "korrekt-hast-batteri")
    assert cli("user", "add", "bo", "--role", "unit", "--hsaid", UNIT, "--email", "inte en adress")[0] == 2


def _outbox(settings) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted((settings.home / "outbox").glob("*.eml"))
    ]


@pytest.fixture
def people(app_env, monkeypatch):
    """A unit account and an analyst, both with addresses; mail to the outbox."""
    monkeypatch.setenv("VARDFIL_PASSWORD", "korrekt-hast-batteri")
    cli("user", "add", "anna", "--role", "unit", "--hsaid", UNIT, "--email", "anna@ekbacken.example")
    cli("user", "add", "ana", "--role", "analyst", "--email", "ana@vgregion.example")
    return app_env


def test_the_close_tells_the_units_and_the_analysts_once(people):
    cli("submit", str(FILE), "--received-at", AT, "--reference", str(SAMPLE_DIR / "reference"))
    before = len(_outbox(people))
    assert cli("close", "2026-10", "--at", "2026-11-04T15:00:00+01:00")[0] == 0
    new = _outbox(people)[before:]
    to_unit = [m for m in new if m["To"] == "anna@ekbacken.example"]
    to_analyst = [m for m in new if m["To"] == "ana@vgregion.example"]
    assert len(to_unit) == 1 and "är klart" in to_unit[0]["Subject"] and " kr" in _text(to_unit[0])
    assert re.search(r"\d{1,3}(\xa0\d{3})*,\d\d kr", _text(to_unit[0]))  # 1 004 878,50 kr
    assert len(to_analyst) == 1 and "stängd" in to_analyst[0]["Subject"] and "Saknar fil" in _text(to_analyst[0])
    cli("close", "2026-10", "--at", "2026-11-04T15:00:00+01:00")  # again: nothing more
    assert len(_outbox(people)) == before + 2


def test_the_units_people_are_found_for_many_units_as_for_one(people, monkeypatch):
    from vardfil.app import open_app
    from vardfil.settings import load_settings

    other = "SE2321000131-E000000001002"
    cli("user", "add", "bo", "--role", "unit", "--hsaid", UNIT, "--email", "bo@ekbacken.example")
    cli("user", "add", "cia", "--role", "unit", "--hsaid", other, "--email", "cia@annan.example")
    accounts = open_app(load_settings()).ledger.accounts
    units = [UNIT, other, "SE2321000131-E000000009999"]
    found = accounts.emails_of_units(units)
    assert found == {u: accounts.emails_of_unit(u) for u in units}
    assert found[UNIT] == ["anna@ekbacken.example", "bo@ekbacken.example"] and found[units[2]] == []


def test_a_dispute_reaches_the_analysts(people):
    cli("submit", str(FILE), "--received-at", AT)
    cli("close", "2026-10", "--at", "2026-11-04T15:00:00+01:00")
    before = len(_outbox(people))
    assert cli("approve", UNIT, "2026-10", "--file-type", "VGP", "--dispute", "--comment", "CNI saknas")[0] == 0
    (msg,) = _outbox(people)[before:]
    assert msg["To"] == "ana@vgregion.example" and "CNI saknas" in _text(msg)


@pytest.mark.parametrize(
    ("now", "sent", "says"),
    [
        ("2026-11-01T02:00:00+01:00", False, None),  # a Sunday: no vardag
        ("2026-11-02T02:00:00+01:00", True, "om 2 vardagar"),
        ("2026-11-03T02:00:00+01:00", True, "i morgon"),
        ("2026-11-04T02:00:00+01:00", True, "i dag kl. 15.00"),
        ("2026-11-05T02:00:00+01:00", False, None),  # after the deadline
    ],
)
def test_reminders_two_vardagar_before_one_before_and_on_the_morning(people, now, sent, says):
    from filespec.calendar import parse_instant
    from vardfil.app import open_app
    from vardfil.mail import send_reminders

    with open_app(people) as app:
        due = send_reminders(app, parse_instant(now))
        again = send_reminders(app, parse_instant(now))  # a rerun of the nightly: nothing twice
    mine = [m for m in _outbox(people) if m["To"] == "anna@ekbacken.example"]
    assert (len(mine) == 1) == sent and again == []
    if sent:
        assert says in mine[0]["Subject"] and {"unit_hsaid": UNIT, "period": "2026-10"} in due


def test_no_reminder_once_the_unit_has_sent_its_file(people):
    from filespec.calendar import parse_instant
    from vardfil.app import open_app
    from vardfil.mail import send_reminders

    cli("submit", str(FILE), "--received-at", "2026-11-02T01:00:00+01:00")
    with open_app(people) as app:
        due = send_reminders(app, parse_instant("2026-11-02T02:00:00+01:00"))
    assert UNIT not in {d["unit_hsaid"] for d in due}


def test_a_kvittens_whose_mail_failed_is_sent_by_the_nightly_retry(unit_with_mail, smtp, monkeypatch):
    from filespec.calendar import parse_instant
    from vardfil.app import open_app
    from vardfil.mail import mail_pending

    inbox, url = smtp
    monkeypatch.setenv("VARDFIL_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")  # down
    _code, out = cli("submit", str(FILE), "--received-at", AT)
    receipt = json.loads(out)["receipt_id"]
    assert inbox.messages == []
    monkeypatch.setenv("VARDFIL_SMTP_URL", url)  # back up
    from vardfil.settings import load_settings

    with open_app(load_settings()) as app:
        assert mail_pending(app, since=parse_instant("2000-01-01T00:00:00+01:00")) == 1
        assert mail_pending(app, since=parse_instant("2000-01-01T00:00:00+01:00")) == 0
    assert len(inbox.messages) == 1 and receipt in _text(inbox.messages[0])


def test_kronor_are_written_the_swedish_way():
    from vardfil.swedish import kronor

    assert kronor("1004878.50") == "1\xa0004\xa0878,50 kr"
    assert kronor("-107360") == "-107\xa0360,00 kr"
