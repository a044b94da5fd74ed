"""E-mail that arrives: against a real SMTP server started here (aiosmtpd), and the outbox when no
server is configured. Each message is sent once; a failed send never fails the submission."""

from __future__ import annotations

import email
import json
import logging
from email import policy

import pytest

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.handlers import Message  # noqa: E402
from conftest import cli  # noqa: E402
from server_support import free_port  # noqa: E402

from sample_data import SAMPLE_DIR  # noqa: E402

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
        assert app.ledger.sent_messages() == []  # released: a retry may send it


def test_a_unit_without_addresses_gets_nothing_and_nothing_is_recorded(app_env, smtp, monkeypatch):
    from vardfil.app import open_app

    inbox, url = smtp
    monkeypatch.setenv("VARDFIL_SMTP_URL", url)
    cli("submit", str(FILE), "--received-at", AT)
    assert inbox.messages == []
    with open_app(app_env) as app:
        assert app.ledger.sent_messages() == []


def test_a_bad_address_is_refused(app_env, monkeypatch):
    monkeypatch.setenv("VARDFIL_PASSWORD", "korrekt-hast-batteri")
    assert cli("user", "add", "bo", "--role", "unit", "--hsaid", UNIT, "--email", "inte en adress")[0] == 2
