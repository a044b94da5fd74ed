"""The catalogue between sign-ins: ``vardfil directory sync`` against a real slapd (StartTLS,
paged searches, a read-only bind), and what it does to rights, sessions, grants and mail."""

from __future__ import annotations

import email
import json
from email import policy

import pytest
from conftest import cli
from ldap_support import PERSONS, READER_PW, commission_ldif, need_slapd, person_ldif, running_slapd, unit_ldif

UNIT_A, UNIT_B, UNIT_REH = "SE2321000131-E000000001001", "SE2321000131-E000000001002", "SE2321000131-E000000002001"
NEW_UNIT = "SE2321000131-E000000001004"
ANNA, GUSTAV, ADAM = "SE2321000131-P000000000001", "SE2321000131-P000000000007", "SE2321000131-P000000000008"


def _entries() -> list[str]:
    return [
        unit_ldif(UNIT_A, "Vårdcentralen Ekbacken"),
        unit_ldif(UNIT_B, "Vårdcentralen Åsen"),
        unit_ldif(UNIT_REH, "Rehab Strandvägen"),
        unit_ldif("SE2321000131-E000000001003", "Hälsocentralen Kajen"),
        unit_ldif("SE2321000131-E000000002002", "Fysioterapin Lönnen"),
        person_ldif(ANNA, "Anna", "Andersson", "anna@exempel.se"),
        person_ldif(GUSTAV, "Gustav", "Gran", "gustav@exempel.se"),
        person_ldif(ADAM, "Adam", "Ahl", "adam@exempel.se"),
        commission_ldif("SE2321000131-U1", UNIT_A, [ANNA, GUSTAV, ADAM]),
        commission_ldif("SE2321000131-U2", UNIT_REH, [GUSTAV]),
    ]


@pytest.fixture
def world(tmp_path, monkeypatch, app_env):
    """A catalogue, the application on it, and three people signed in through the IdP before
    (their sessions made by the same code the IdP's callback runs); Adam administers unit A."""
    need_slapd()
    from vardfil.accounts import sign_in_person
    from vardfil.app import open_app
    from vardfil.rights import Commission, Person

    with running_slapd(tmp_path / "ldap", _entries()) as catalogue:
        for k, v in catalogue.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("VARDFIL_OUTPUT", str(tmp_path / "out"))
        # Five rights in all here: one person's loss is already a fifth of them.
        monkeypatch.setenv("VARDFIL_DIRECTORY_MAX_REMOVAL", "0.5")
        from vardfil.settings import load_settings

        with open_app(load_settings()) as app:
            app.ledger.accounts.add_grant(
                person_hsaid=ADAM, role="unit_admin", unit_hsaid=UNIT_A, actor="job:test", now=_now()
            )
            sessions = {}
            for hsa, units, admin in (
                (ANNA, {UNIT_A}, set()),
                (GUSTAV, {UNIT_A, UNIT_REH}, set()),
                (ADAM, {UNIT_A}, {UNIT_A}),
            ):
                who = Person(
                    hsa_id=hsa,
                    name=hsa[-2:],
                    email=f"gammal-{hsa[-1]}@exempel.se",
                    role="unit_admin" if admin else "unit",
                    units=frozenset(units),
                    admin_units=frozenset(admin),
                    commissions=(Commission(hsaid="c", name="n", purpose="Vård och behandling", unit_hsaid=UNIT_A),),
                    acr="http://id.sambi.se/loa/loa3",
                    amr=("smartcard",),
                )
                sessions[hsa] = sign_in_person(app.ledger, who, id_token="x.y.z", sid=f"sid-{hsa}", sub=hsa).token
            yield app, catalogue, sessions


def _now():
    from vardfil.ledger import utcnow

    return utcnow()


def _user(app, token):
    from vardfil.accounts import user_for

    return user_for(app.ledger, token)


def test_a_sync_follows_the_catalogue(world, monkeypatch):
    from vardfil.actors import job
    from vardfil.directory import run

    app, catalogue, sessions = world
    admin = catalogue.admin()
    # Between two syncs: a new unit, Anna's new address, Gustav's commission on unit A ends.
    admin.add(
        f"hsaIdentity={NEW_UNIT},ou=Enheter,dc=vgregion,dc=test",
        ["hsaHealthCareUnit"],
        {"hsaIdentity": NEW_UNIT, "ou": "Nya VC"},
    )
    admin.modify(f"hsaIdentity={ANNA},{PERSONS}", {"mail": [("MODIFY_REPLACE", ["anna.andersson@vgregion.se"])]})
    admin.modify(
        "hsaIdentity=SE2321000131-U1,ou=Uppdrag,dc=vgregion,dc=test",
        {"hsaCommissionMember": [("MODIFY_DELETE", [GUSTAV])]},
    )
    dry = run(app, actor=job("test"), dry_run=True)
    assert [(r["person"], r["unit"]) for r in dry["removals"]] == [(GUSTAV, UNIT_A)]
    assert _user(app, sessions[GUSTAV]) is not None  # a dry run changes nothing

    report = run(app, actor=job("test"))
    assert report["applied"] and report["counts"] == {"units": 6, "persons": 3, "commissions": 2}
    # The ended commission: unit A gone from Gustav's account, his session ended, the reason logged.
    assert _user(app, sessions[GUSTAV]) is None
    gustav = app.ledger.accounts.by_hsa_id(GUSTAV)
    assert app.ledger.accounts.units_of(gustav.id) == {UNIT_REH}
    removed = next(e for e in app.ledger.audit_entries() if e.action == "directory_rights_removed")
    assert removed.subject == f"person:{GUSTAV}" and "upphört" in removed.detail
    # The others keep their sessions; Anna's address is the catalogue's now.
    assert _user(app, sessions[ANNA]) is not None and _user(app, sessions[ADAM]) is not None
    assert app.ledger.accounts.by_hsa_id(ANNA).email == "anna.andersson@vgregion.se"
    # The new unit, and the register's units the catalogue lacks or that ended with a period open.
    kinds = {(d["unit"], d["kind"]) for d in report["unit_deviations"]}
    assert (NEW_UNIT, "not_in_register") in kinds
    assert ("SE2321000131-E000000002003", "not_in_catalogue") in kinds
    assert ("SE2321000131-E000000002003", "ended_with_open_period") in kinds
    # … and they are among the analysts' deviations, in words.
    from vardfil.directory import catalogue_flags

    shown = {(c["unit_hsaid"], c["reason"]) for c in catalogue_flags(app)}
    assert (NEW_UNIT, "finns i katalogen men inte i vårdvalets enhetsregister") in shown
    # Unit A's admin was told by mail.
    mails = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in (app.settings.home / "outbox").glob("*.eml")
    ]
    told = [m for m in mails if "Behörigheter i vardfil har upphört" in str(m["Subject"])]
    assert told and "adam" in str(told[0]["To"]) and GUSTAV in told[0].get_body(("plain",)).get_content()


def test_a_grant_is_suspended_with_its_commission_and_comes_back_with_it(world):
    from vardfil.actors import job
    from vardfil.directory import run

    app, catalogue, sessions = world
    admin = catalogue.admin()
    u1 = "hsaIdentity=SE2321000131-U1,ou=Uppdrag,dc=vgregion,dc=test"
    admin.modify(u1, {"hsaCommissionMember": [("MODIFY_DELETE", [ADAM])]})
    run(app, actor=job("test"))
    (grant,) = app.ledger.accounts.grants(ADAM)
    assert grant.suspended_at is not None and grant.revoked_at is None  # suspended, not deleted
    assert _user(app, sessions[ADAM]) is None
    admin.modify(u1, {"hsaCommissionMember": [("MODIFY_ADD", [ADAM])]})
    run(app, actor=job("test"))
    (grant,) = app.ledger.accounts.grants(ADAM)
    assert grant.suspended_at is None
    assert [e.action for e in app.ledger.audit_entries()][:3].count("role_restored") == 1


def test_a_catalogue_that_goes_away_mid_sync_changes_nothing(world, monkeypatch):
    import ldap3

    import vardfil.directory as directory
    from vardfil.actors import job

    app, catalogue, sessions = world
    catalogue.admin().modify(
        "hsaIdentity=SE2321000131-U1,ou=Uppdrag,dc=vgregion,dc=test",
        {"hsaCommissionMember": [("MODIFY_DELETE", [GUSTAV])]},
    )
    monkeypatch.setattr(directory, "PAGE_SIZE", 2)  # several pages per search
    real = ldap3.Connection.search
    calls = []

    def search(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the catalogue goes down after its first page
            catalogue.process.kill()
            catalogue.process.wait()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ldap3.Connection, "search", search)
    before = app.ledger.accounts.units_by_account()
    with pytest.raises(directory.DirectoryUnavailable, match="inget ändrades"):
        directory.run(app, actor=job("test"))
    assert app.ledger.accounts.units_by_account() == before
    assert _user(app, sessions[GUSTAV]) is not None
    assert app.ledger.audit_entries()[0].action == "directory_sync_failed"


def test_a_refused_bind_changes_nothing_and_says_so(world, monkeypatch, capsys):
    app, _, sessions = world
    monkeypatch.setenv("VARDFIL_DIRECTORY_PASSWORD", READER_PW + "-fel")
    code, _ = cli("directory", "sync")
    assert code == 3
    assert _user(app, sessions[GUSTAV]) is not None


def test_taking_many_rights_at_once_asks_for_confirm(world, monkeypatch):
    app, catalogue, sessions = world
    catalogue.admin().delete("hsaIdentity=SE2321000131-U1,ou=Uppdrag,dc=vgregion,dc=test")  # unit A's whole staff
    code, _ = cli("directory", "sync", "--json")
    assert code == 2 and _user(app, sessions[ANNA]) is not None  # stopped, nothing changed
    code, out = cli("directory", "sync", "--json", "--confirm")
    assert code == 0 and json.loads(out)["applied"] and _user(app, sessions[ANNA]) is None
