"""The ledger's tables (SQLAlchemy 2 declarative). The schema itself is created and upgraded by
the Alembic migrations in ``vardfil/ledger/migrations``; these classes must match them (a test compares).

Times are stored as UTC and returned as aware UTC datetimes on every backend.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime stored as naive UTC (SQLite has no time zones; PostgreSQL gets the same)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("ledger times must be aware")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the ledger."""


class ReceivedFile(Base):
    """One received file (one SHA-256): what arrived, when, and the kvittens it got."""

    __tablename__ = "received_file"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    receipt_id: Mapped[str] = mapped_column(String(40), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))  # not unique from 2026.2 (migration 0005)
    file_name: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(16))  # cli | inbox | portal | dag
    actor: Mapped[str] = mapped_column(String(128))  # a typed actor (vardfil.actors): who may read an F01 file
    file_type: Mapped[str | None] = mapped_column(String(3))
    unit_hsaid: Mapped[str | None] = mapped_column(String(31))
    period: Mapped[str | None] = mapped_column(String(7))
    sequence: Mapped[int | None] = mapped_column(Integer)
    spec_version: Mapped[str | None] = mapped_column(String(32))
    deadline: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    rows_total: Mapped[int] = mapped_column(Integer)
    rows_accepted: Mapped[int] = mapped_column(Integer)
    rows_rejected: Mapped[int] = mapped_column(Integer)
    rows_with_warnings: Mapped[int] = mapped_column(Integer)
    kvittens_json: Mapped[str] = mapped_column(Text)
    findings_path: Mapped[str] = mapped_column(String(255))  # relative to the store root
    accepted_path: Mapped[str | None] = mapped_column(String(255))
    # The derived files' hashes, checked by ``vardfil verify`` (migration 0012; None before it).
    findings_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    accepted_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    # Gallrad (its raw bytes, accepted rows and findings removed under a decision, 0013): the
    # record, the hashes and the kvittens stay.
    gallrad_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True, default=None)
    gallrad_by: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)

    __table_args__ = (
        Index("ix_received_file_key", "unit_hsaid", "file_type", "period", "received_at"),
        Index("ix_received_file_sha256", "sha256"),
    )


class FindingCount(Base):
    """counts_by_rule of a file, one row per rule (the findings summary)."""

    __tablename__ = "finding_count"

    received_file_id: Mapped[int] = mapped_column(ForeignKey("received_file.id"), primary_key=True)
    rule: Mapped[str] = mapped_column(String(8), primary_key=True)
    severity: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer)


class PeriodState(Base):
    """Where a period stands: OPEN, CLOSED (with the instant of the last close), FINALISED."""

    __tablename__ = "period_state"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    detail: Mapped[str | None] = mapped_column(Text)


class Dispens(Base):
    """An extended deadline for one unit and one period, with the analyst's reason."""

    __tablename__ = "dispens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit_hsaid: Mapped[str] = mapped_column(String(31))
    period: Mapped[str] = mapped_column(String(7))
    deadline: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[str] = mapped_column(String(128))
    granted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # A withdrawal is a row of its own (the newest row of a unit and period is in force): the
    # grants and their withdrawal stay on record.
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_dispens_unit_period", "unit_hsaid", "period"),)


class Approval(Base):
    """A unit's approval or dispute of its underlag, or an analyst's finalisation."""

    __tablename__ = "approval"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit_hsaid: Mapped[str | None] = mapped_column(String(31))
    file_type: Mapped[str | None] = mapped_column(String(3))
    period: Mapped[str] = mapped_column(String(7))
    action: Mapped[str] = mapped_column(String(16))  # GODKANN | INVAND | FASTSTALL
    comment: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class AuditLog(Base):
    """Append-only: who did what, when, and why. UPDATE and DELETE are refused by triggers."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # X-Request-ID (0012)


class PublishedFile(Base):
    """A file a close published (Parquet, a workbook), as it was written: ``vardfil verify``
    re-hashes it. Rewritten on purpose (the region workbook), the row follows (migration 0012)."""

    __tablename__ = "published_file"

    path: Mapped[str] = mapped_column(String(500), primary_key=True)  # relative to the output root
    period: Mapped[str] = mapped_column(String(7))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    written_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class PeriodClose(Base):
    """A close of a period: the instant, who, the snapshot of everything used, where the outputs are."""

    __tablename__ = "period_close"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    closed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)  # the instant T the close is "as of"
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    snapshot: Mapped[str] = mapped_column(Text)  # JSON: files, spec/price/fee versions, reference hashes
    underlag_path: Mapped[str] = mapped_column(String(512))
    total: Mapped[str] = mapped_column(String(32))  # Decimal kronor, as text (exact on every backend)


class UnderlagLineRow(Base):
    """One line of the underlag published at a close (RATTELSE lines included)."""

    __tablename__ = "underlag_line"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    close_period: Mapped[str] = mapped_column(ForeignKey("period_close.period"))
    period: Mapped[str] = mapped_column(String(7))
    file_type: Mapped[str] = mapped_column(String(3))
    unit_hsaid: Mapped[str] = mapped_column(String(31))
    component: Mapped[str] = mapped_column(String(24))
    quantity: Mapped[str | None] = mapped_column(String(32))
    unit_price: Mapped[str | None] = mapped_column(String(32))
    amount: Mapped[str] = mapped_column(String(32))
    corrected_period: Mapped[str | None] = mapped_column(String(7))

    __table_args__ = (Index("ix_underlag_line_unit", "close_period", "unit_hsaid"),)


class Settlement(Base):
    """What was paid for a unit, filtyp and period, and on which file. Append-only: the newest row of
    a (period, file_type, unit) is in force; a RATTELSE appends a new one."""

    __tablename__ = "settlement"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    period: Mapped[str] = mapped_column(String(7))
    file_type: Mapped[str] = mapped_column(String(3))
    unit_hsaid: Mapped[str] = mapped_column(String(31))
    received_file_id: Mapped[int | None] = mapped_column(ForeignKey("received_file.id"))
    total: Mapped[str] = mapped_column(String(32))
    settled_in: Mapped[str] = mapped_column(String(7))  # the period whose close recorded it
    settled_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_settlement_key", "period", "file_type", "unit_hsaid"),)


class Account(Base):
    """A portal user: a unit user bound to one or more HSA-ids, an analyst or an admin."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    name_key: Mapped[str] = mapped_column(String(128))  # vardfil.names.name_key: unique without case
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # unit | unit_admin | analyst | admin
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    email: Mapped[str | None] = mapped_column(String(254))
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)  # set: signs nobody in
    # A person who signs in through the region's IdP is their HSA-id (the user name is the same);
    # a password account has none.
    hsa_id: Mapped[str | None] = mapped_column(String(31))
    display_name: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("name_key", name="uq_account_name_key"),
        UniqueConstraint("hsa_id", name="uq_account_hsa_id"),
    )


class AccountUnit(Base):
    """The units a unit user acts for (for a person from the IdP: the units of their commissions
    at their last sign-in), and whether they administer it there."""

    __tablename__ = "account_unit"

    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), primary_key=True)
    unit_hsaid: Mapped[str] = mapped_column(String(31), primary_key=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)


class RoleGrant(Base):
    """A role the region (or a unit's admin) granted a person inside vardfil: ``analyst``, or
    ``unit_admin`` of one unit. It gives something only beside a commission (``vardfil.rights``)."""

    __tablename__ = "role_grant"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_hsaid: Mapped[str] = mapped_column(String(31))
    role: Mapped[str] = mapped_column(String(16))  # analyst | unit_admin
    unit_hsaid: Mapped[str | None] = mapped_column(String(31))
    granted_by: Mapped[str] = mapped_column(String(128))
    granted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(128))
    # Suspended by the catalogue sync while the commission behind it is gone; a returning
    # commission lifts it (``vardfil.directory``).
    suspended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_role_grant_person", "person_hsaid"),)


class JournalSystem(Base):
    """A journal system that sends files itself, known by the HSA-id of its SITHS function
    certificate, and the units it may send for (``journal_system_unit``)."""

    __tablename__ = "journal_system"

    hsa_id: Mapped[str] = mapped_column(String(31), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class JournalSystemUnit(Base):
    """A unit a journal system may send files for."""

    __tablename__ = "journal_system_unit"

    system_hsaid: Mapped[str] = mapped_column(ForeignKey("journal_system.hsa_id"), primary_key=True)
    unit_hsaid: Mapped[str] = mapped_column(String(31), primary_key=True)


class DirectorySync(Base):
    """One run of the catalogue sync: when, by whom, whether it changed anything, what it found."""

    __tablename__ = "directory_sync"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    applied: Mapped[bool] = mapped_column(Boolean)
    result: Mapped[str] = mapped_column(Text)  # JSON: the sync's report


class OidcLogin(Base):
    """A sign-in under way at the IdP: its state (only a hash), nonce and PKCE verifier, bound to
    the browser that started it by a cookie (only its hash); used once."""

    __tablename__ = "oidc_login"

    state_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    binding_sha256: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class OidcSeenToken(Base):
    """The ``jti`` of every logout token taken (only a hash): a replayed one is refused."""

    __tablename__ = "oidc_seen_token"

    jti_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class WebSession(Base):
    """A signed-in browser: only the SHA-256 of its token is stored, with its CSRF token."""

    __tablename__ = "web_session"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)  # the idle timeout counts from it
    # Signed in through the IdP: its session (``sid``) and subject, for back-channel logout, and the
    # id token, the hint of an RP-initiated logout.
    oidc_sid: Mapped[str | None] = mapped_column(String(255))
    oidc_sub: Mapped[str | None] = mapped_column(String(255))
    id_token: Mapped[str | None] = mapped_column(Text)
    # The commissions the person signed in with (JSON: hsaid, name, purpose, unit; 0013): the
    # access log names the one a read of a unit's data was made under.
    commissions: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)


class ApiToken(Base):
    """A journal system's token for one unit: only the SHA-256 of the token is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    name_key: Mapped[str] = mapped_column(String(128))  # vardfil.names.name_key: unique without case
    unit_hsaid: Mapped[str] = mapped_column(String(31))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (UniqueConstraint("name_key", name="uq_api_token_name_key"),)


class SignInThrottle(Base):
    """Sign-in attempts per typed name (``user:KEY``) or per address (``addr:IP``) since the key
    was last forgiven, counted before each is checked, and the earliest instant the next attempt
    is taken (``locked_until``: a growing delay, ``vardfil.accounts``)."""

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    first_failure_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class SentMessage(Base):
    """A message sent (or written to the outbox), keyed by what it is about: each is sent once.
    Never the addresses or the text: those are personal data, the key says what was sent."""

    __tablename__ = "sent_message"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # e.g. "kvittens:KV-…"
    kind: Mapped[str] = mapped_column(String(32))
    recipients: Mapped[int] = mapped_column(Integer)
    via: Mapped[str] = mapped_column(String(8))  # smtp | outbox
    sent_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)  # claimed (sent, or last tried)
    # "sent", or "failed" until a retry succeeds (migration 0012): the oldest failure is an alert.
    state: Mapped[str] = mapped_column(String(8), default="sent")
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    failed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)  # the first failure


class AccountLink(Base):
    """A one-time link that lets a person set the password of their account (only the link
    token's SHA-256 is stored): nobody types a password for somebody else."""

    __tablename__ = "account_link"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class AccessEntry(Base):
    """One read of patient-level data (patientdatalagen 4 kap. 3 §): who, under which role and
    commission, what was done with which file of which unit, how many patients it covers, when,
    from where. Append-only (triggers, 0013). The patients themselves are found from the files
    (``receipts``), never copied here."""

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(128))  # a typed actor
    hsa_id: Mapped[str | None] = mapped_column(String(64))  # the person's or the system's HSA-id
    role: Mapped[str] = mapped_column(String(16))
    commission: Mapped[str | None] = mapped_column(String(255))  # "HSA-id (ändamål)" of the commission used
    purpose: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # läsa | ladda_ner | skriva_ut
    kind: Mapped[str] = mapped_column(String(16))  # kvittens | fellista | arbetsbok | besok | acg
    unit_hsaid: Mapped[str | None] = mapped_column(String(31))
    period: Mapped[str | None] = mapped_column(String(7))
    file: Mapped[str] = mapped_column(String(255))  # what was served, as its name
    receipts: Mapped[str] = mapped_column(Text)  # JSON: the received files whose patients it covers
    patients: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_access_log_at", "at"),)


class LogReview(Base):
    """A signed-off monthly follow-up of the access log (HSLF-FS 2016:40 4 kap. 9 §)."""

    __tablename__ = "log_review"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    period: Mapped[str] = mapped_column(String(7))
    reviewed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    reviewer: Mapped[str] = mapped_column(String(128))
    report_sha256: Mapped[str] = mapped_column(String(64))  # the report as it was signed
    flags: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)


class GallringDecision(Base):
    """A recorded decision to gallra (the archive authority's, referred to by ``ref``): what kind
    of material, received (or made) before when."""

    __tablename__ = "gallring_decision"

    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    what: Mapped[str] = mapped_column(String(16))  # a kind of vardfil/retention.toml
    before: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    text: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
