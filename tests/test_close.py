"""Close and underlag: the region's two closes to the öre (through the CLI, on SQLite and
PostgreSQL), the Parquet contract, idempotency, and the worked example of ERSATTNINGSMODELL.md §6."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import UNDERLAG_COLUMNS, cli, underlag_key
from hypothesis import given, settings
from hypothesis import strategies as st

from filespec import Unit, price_list_for
from reports import Component, round_ore, total, vgp_underlag
from validators import make_personnummer

EXAMPLE = Path(__file__).parent / "data" / "region_example"
EXPECTED = json.loads((EXAMPLE / "expected.json").read_text(encoding="utf-8"))
REF = str(EXAMPLE / "reference")


def test_region_closes_to_the_ore(app_env):
    closes = {c["after_submission"]: c for c in EXPECTED["closes"]}
    for sub in EXPECTED["submissions"]:
        cli("submit", str(EXAMPLE / sub["file"]), "--received-at", sub["received_at"], "--reference", REF)
        close = closes.get(sub["index"])
        if close is None:
            continue
        code, out = cli("close", close["period"], "--at", close["at"], "--reference", REF)
        assert code == 0
        summary = json.loads(out)
        table = pq.read_table(summary["underlag_parquet"])
        assert table.column_names == UNDERLAG_COLUMNS
        assert [underlag_key(r) for r in table.to_pylist()] == [underlag_key(r) for r in close["underlag_lines"]]
        # Closing twice changes nothing.
        code, again = cli("close", close["period"], "--at", close["at"], "--reference", REF)
        assert code == 0 and json.loads(again)["snapshot_sha256"] == summary["snapshot_sha256"]
        assert pq.read_table(summary["underlag_parquet"]).equals(table)
    # The late files of 2026-09 were settled as RATTELSE at the close of 2026-10, once.
    assert {(r["unit_hsaid"][-3:], r["amount"]) for r in summary["rattelse"]} == {
        ("101", "6108.00"),
        ("103", "67006.00"),
    }


def test_close_before_the_deadline_is_refused(app_env):
    code, _ = cli("close", "2026-09", "--at", "2026-10-05T14:59:59+02:00", "--reference", REF)
    assert code == 2


def test_parquet_types_and_datasets(app_env, monkeypatch):
    import vardfil.publish.datasets as datasets

    copied: list[str] = []
    copy = datasets._partition_streamed
    monkeypatch.setattr(datasets, "_partition_streamed", lambda *a: copied.append(a[1]) or copy(*a))
    for sub in EXPECTED["submissions"][:13]:
        cli("submit", str(EXAMPLE / sub["file"]), "--received-at", sub["received_at"], "--reference", REF)
    _code, out = cli("close", "2026-09", "--at", "2026-10-05T15:00:00+02:00", "--reference", REF)
    assert copied == []  # the close wrote the dataset's part itself
    summary = json.loads(out)
    schema = pq.read_schema(summary["underlag_parquet"])
    assert schema.field("amount").type == pa.decimal128(18, 2)
    assert schema.field("corrected_period").type == pa.string()
    visits = pl.read_parquet(summary["besok_parquet"])
    assert "patient_id" not in visits.columns and visits["pseudonym"].str.len_chars().max() == 32
    acg = pl.read_parquet(summary["acg_parquet"])
    assert (
        "patient_id" not in acg.columns
        and acg.height > 0
        and set(acg["diagnos"].str.slice(0, 1).to_list()) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    )
    snapshot_files = {u["unit_hsaid"][-3:]: u["receipt_id"] for u in summary["units"]}
    assert snapshot_files["103"] is None and "SE2321000131-E000000000103" in summary["missing_units"]
    # The period's part of the visit dataset across periods, written by the close beside
    # besok.parquet and moved into place: the same rows and types, the period in the folder name.
    from vardfil.analysis import dataset_root
    from vardfil.month.close import publish_year

    part = dataset_root(app_env.output) / "besok" / "period=2026-09" / "part-0.parquet"
    besok = pq.read_table(summary["besok_parquet"])
    written = pq.read_table(part)
    assert written.equals(besok.drop_columns(["period"])) and written.schema.equals(
        besok.schema.remove(besok.schema.get_field_index("period"))
    )
    assert not datasets.dataset_ready(Path(summary["besok_parquet"]).parent).exists()
    # Published again (a re-run after an interrupted close): copied from besok.parquet, the same.
    from vardfil.app import open_app

    with open_app(app_env) as app:
        publish_year(app, "2026-09", fresh=False)
    assert copied == ["besok"] and pq.read_table(part).equals(written)


def _unit(**kw) -> Unit:
    base = {
        "hsaid": "SE2321000131-E000000009001",
        "namn": "Exempel",
        "filtyp": "VGP",
        "driftform": "PRIVAT",
        "giltig_from": dt.date(2025, 1, 1),
        "giltig_tom": None,
        "cni": Decimal("2.8"),
        "geografi_poang": None,
    }
    return Unit(**{**base, **kw})


def test_worked_example_of_section_6():
    """VGR-2026.1, period 2026-10, a PRIVAT VGP unit with cni 2.8: total 556,147.07."""
    unit = _unit()
    # 1,000 listed persons, 1,032.40 listningspoäng: 946 women of 50 (1.00) and 54 girls of 0 (1.60).
    women = [make_personnummer(dt.date(1976, 1, 1) + dt.timedelta(days=i), 2 * (i % 400) + 2) for i in range(946)]
    girls = [make_personnummer(dt.date(2026, 3, 1) + dt.timedelta(days=i % 150), 2 * i + 2) for i in range(54)]
    listing = pl.DataFrame({"patient_id": women + girls, "kon": ["K"] * 1000, "vardenhet_hsaid": [unit.hsaid] * 1000})
    visitor = [make_personnummer(dt.date(1960, 5, 5), 2 * i + 1) for i in range(40)]
    rows = (
        # 40 LAK mottagning visits by persons from län 14 not listed at the unit: 600 each, fee 200
        [
            {
                "patient_id": p,
                "folkbokforing_lan": "14",
                "kontakttyp": "M",
                "yrkeskategori": "LAK",
                "forvantad_avgift": 200,
            }
            for p in visitor
        ]
        # 5 SSK home visits by utomlänspatienter: 600 each, fee 150
        + [
            {
                "patient_id": visitor[i],
                "folkbokforing_lan": "01",
                "kontakttyp": "H",
                "yrkeskategori": "SSK",
                "forvantad_avgift": 150,
            }
            for i in range(5)
        ]
        # telephone contacts of listed persons: no visit fee, fee 160 (328 × 160 = 52,480)
        + [
            {
                "patient_id": women[i],
                "folkbokforing_lan": "14",
                "kontakttyp": "T",
                "yrkeskategori": "LAK",
                "forvantad_avgift": 160,
            }
            for i in range(328)
        ]
    )
    accepted = pl.DataFrame(rows)
    assert accepted["forvantad_avgift"].sum() == 61230
    lines = vgp_underlag(
        unit=unit, period="2026-10", accepted=accepted, listing=listing, prices=price_list_for("2026-10")
    )
    by = {(ln.component, ln.unit_price): ln for ln in lines}
    assert by[(Component.ALDER_KON, Decimal(471))].quantity == Decimal("1032.40")
    assert by[(Component.ALDER_KON, Decimal(471))].amount == Decimal("486260.40")
    assert by[(Component.CNI, Decimal(67))].amount == Decimal("69170.80")
    assert by[(Component.BESOK_EJ_LISTAD, Decimal(600))].amount == Decimal("24000.00")
    assert by[(Component.BESOK_UTOMLANS, Decimal(600))].amount == Decimal("3000.00")
    assert by[(Component.PATIENTAVGIFT, None)].amount == Decimal("-61230.00")
    assert by[(Component.MOMSKOMPENSATION, Decimal("0.06"))].amount == Decimal("34945.87")
    assert total(lines) == Decimal("556147.07")
    assert len(lines) == 6  # no zero lines (no LAK utomläns, no other-profession ej listad)


def test_listing_counted_once_pays_every_unit_as_counted_alone():
    """The close counts the whole listing once (``UnitListings``); each unit's listningspoäng and
    lines must be what counting its own listed persons gives, to the öre."""
    from reports import listing_counts, listing_points, points_of
    from vardfil.publish.inputs import UnitListings

    prices = price_list_for("2026-10")
    units = [_unit(hsaid=f"SE2321000131-E00000000{n}001") for n in range(1, 4)]
    born = [dt.date(1930, 2, 28) + dt.timedelta(days=97 * i) for i in range(300)]
    listing = pl.DataFrame(
        {
            # Birthdays on both sides of the period's last day; the third unit lists nobody.
            "patient_id": [make_personnummer(b, 2 * i + 1 + i % 2) for i, b in enumerate(born)],
            "kon": ["M" if i % 2 else "K" for i in range(300)],
            "vardenhet_hsaid": [units[i % 2].hsaid for i in range(300)],
        }
    )
    listings = UnitListings(listing, "2026-10")
    for unit in units:
        alone = listing_points(listing, unit.hsaid, "2026-10", prices)
        assert points_of(listings.counted(unit.hsaid), prices) == alone
        assert alone > 0 or unit is units[2]
        args = {
            "unit": unit,
            "period": "2026-10",
            "accepted": None,
            "listing": listings.of(unit.hsaid),
            "prices": prices,
        }
        assert vgp_underlag(**args, listed=listings.counted(unit.hsaid)) == vgp_underlag(**args)
    assert UnitListings(None, "2026-10").counted(units[0].hsaid) is None
    broken = listing.with_columns(pl.lit("197001019999").alias("patient_id"))
    with pytest.raises(ValueError, match="without a valid birth date"):
        listing_counts(broken, "2026-10")


@pytest.mark.parametrize(
    ("value", "rounded"),
    [("0.005", "0.01"), ("-0.005", "-0.01"), ("2.345", "2.35"), ("-2.345", "-2.35"), ("1.004", "1.00")],
)
def test_rounding_is_half_away_from_zero(value, rounded):
    assert round_ore(Decimal(value)) == Decimal(rounded)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["M", "H", "V", "T", "G"]),
            st.sampled_from(["LAK", "SSK"]),
            st.sampled_from(["14", "13"]),
            st.integers(0, 300),
        ),
        max_size=30,
    ),
    st.sampled_from(["PRIVAT", "OFFENTLIG"]),
)
def test_lines_sum_to_the_total_and_moms_is_on_the_rounded_lines(visits, driftform):
    unit = _unit(driftform=driftform)
    accepted = pl.DataFrame(
        [
            {
                "patient_id": make_personnummer(dt.date(1970, 1, 1), i + 1),
                "kontakttyp": k,
                "yrkeskategori": y,
                "folkbokforing_lan": lan,
                "forvantad_avgift": fee,
            }
            for i, (k, y, lan, fee) in enumerate(visits)
        ],
        schema={
            "patient_id": pl.Utf8,
            "kontakttyp": pl.Utf8,
            "yrkeskategori": pl.Utf8,
            "folkbokforing_lan": pl.Utf8,
            "forvantad_avgift": pl.Int64,
        },
    )
    prices = price_list_for("2026-10")
    lines = vgp_underlag(unit=unit, period="2026-10", accepted=accepted, listing=None, prices=prices)
    # The total worked out from the visits themselves, visit by visit, not from the lines: with no
    # listing every paid visit is either utomläns or ej listad, each at the price of its category.
    care = Decimal("0.00")
    for k, y, lan, _ in visits:
        if k in prices.besok_kontakttyper:
            lak, other = prices.besok_utomlans if lan != prices.hemlan else prices.besok_ej_listad
            care += lak if y == "LAK" else other
    moms = round_ore(care * prices.moms_rate) if driftform == "PRIVAT" else Decimal(0)
    assert total(lines) == care + moms - sum(fee for *_, fee in visits)
    assert all(ln.amount == round_ore(ln.amount) for ln in lines)
    moms = [ln for ln in lines if ln.component is Component.MOMSKOMPENSATION]
    if moms:
        basis = sum(
            ln.amount for ln in lines if ln.component not in (Component.PATIENTAVGIFT, Component.MOMSKOMPENSATION)
        )
        assert moms[0].quantity == basis and moms[0].amount == round_ore(basis * Decimal("0.06"))
    paid = sum(1 for k, *_ in visits if k in "MHV")
    assert (
        sum(ln.quantity for ln in lines if ln.component in (Component.BESOK_EJ_LISTAD, Component.BESOK_UTOMLANS))
        == paid
    )


def test_approve_dispute_and_finalise(app_env):
    for sub in EXPECTED["submissions"][:13]:
        cli("submit", str(EXAMPLE / sub["file"]), "--received-at", sub["received_at"], "--reference", REF)
    unit = "SE2321000131-E000000000201"
    assert cli("approve", unit, "2026-09", "--file-type", "REH")[0] == 2  # not closed yet
    code, out = cli("close", "2026-09", "--at", "2026-10-05T15:00:00+02:00", "--reference", REF)
    before = pq.read_table(json.loads(out)["underlag_parquet"])
    assert cli("approve", unit, "2026-09", "--file-type", "REH", "--dispute")[0] == 2  # a dispute needs a comment
    assert cli("approve", unit, "2026-09", "--file-type", "REH", "--dispute", "--comment", "Geografi saknas?")[0] == 0
    assert cli("approve", unit, "2026-09", "--file-type", "REH")[0] == 0
    code, out = cli("finalise", "2026-09")
    assert code == 0 and json.loads(out)["answers"] == {f"{unit}/REH": "GODKANN"}
    assert cli("approve", unit, "2026-09", "--file-type", "REH")[0] == 2  # finalised: never changes
    assert cli("finalise", "2026-09")[0] == 2
    code, out = cli("close", "2026-09", "--at", "2026-10-06T15:00:00+02:00", "--reference", REF)
    assert pq.read_table(json.loads(out)["underlag_parquet"]).equals(before)
    from vardfil.ledger import Ledger

    ledger = Ledger(app_env.database_url)
    actions = [e.action for e in ledger.audit_entries()]
    assert {"underlag_invand", "underlag_godkann", "period_finalised", "period_closed"} <= set(actions)
    ledger.dispose()


@given(
    st.lists(st.text(min_size=1, max_size=14), max_size=30),
    st.one_of(st.binary(min_size=1, max_size=64), st.binary(min_size=65, max_size=200)),
)  # a key longer than a block is hashed
@settings(max_examples=80, deadline=None)
def test_pseudonym_is_hmac_sha256_of_the_id(ids, key):
    import hashlib
    import hmac

    from vardfil.publish.datasets import pseudonymise

    expected = [hmac.new(key, i.encode(), hashlib.sha256).hexdigest()[:32] for i in ids] + [None]
    got = pseudonymise(pl.Series(ids + [None], dtype=pl.Utf8), key).to_list()
    assert got == expected


def test_visit_dataset_row_groups_keep_the_order_and_fail_loudly(tmp_path, monkeypatch):
    """The close's visit dataset is written a row group at a time in a thread of its own: the rows
    come out in the order the units were added; a failed write fails the commit; a failed close
    leaves no file behind and its own error is the one raised."""
    from types import SimpleNamespace

    import vardfil.publish.datasets as datasets
    from vardfil.ledger import FileKey

    monkeypatch.setattr(datasets._RowGroups, "ROWS", 5)  # several row groups from small files

    def visits(n: int, unit: int) -> pl.DataFrame:
        return pl.DataFrame({"patient_id": [f"19{unit:02d}0101{i:04d}" for i in range(n)], "rad": list(range(n))})

    def run(out: Path) -> datasets.VisitDatasets:
        """What close_period does: every unit's rows added, then commit; on an error, abandon."""
        ds = datasets.VisitDatasets(
            ledger=None,  # type: ignore[arg-type]  (no listing: no earlier periods are read)
            read_accepted=lambda f: None,
            pseudonym_key=b"k",
            period="2026-10",
            at=dt.datetime(2026, 11, 5, tzinfo=dt.UTC),
            listing=None,
            out_dir=out,
        )
        try:
            for unit, n in enumerate([3, 7, 1, 12, 4]):
                key = FileKey(unit_hsaid=f"U{unit}", file_type="VGP", period="2026-10")
                ds.add(key, SimpleNamespace(receipt_id=f"KV-{unit}"), visits(n, unit))  # type: ignore[arg-type]
            ds.commit()
        except BaseException:
            ds.abandon()
            raise
        return ds

    run(tmp_path / "ok")
    table = pq.read_table(tmp_path / "ok" / "besok.parquet")
    assert (
        table.num_rows == 27 and pq.ParquetFile(tmp_path / "ok" / "besok.parquet").num_row_groups == 3
    )  # 3+7, 1+12, 4
    assert table.column("receipt_id").to_pylist() == [
        f"KV-{u}" for u, n in enumerate([3, 7, 1, 12, 4]) for _ in range(n)
    ]
    assert table.column("rad").to_pylist() == [i for n in [3, 7, 1, 12, 4] for i in range(n)]
    assert "patient_id" not in table.column_names

    def broken(self, table):
        raise OSError("disk full")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        run(tmp_path / "failing")
    assert not any((tmp_path / "failing").iterdir())  # nothing half-written is left


@pytest.mark.parametrize("batch_rows", [1, 5, 262_144])
def test_acg_input_batched_is_every_listed_persons_diagnoses(tmp_path, monkeypatch, batch_rows):
    """The ACG input gathers diagnoses from the earlier periods' files and the close's own, and
    matches them with the listing a batch at a time: every diagnosis of a listed person once per
    listing row (a person listed twice: twice), none of anyone else, with the keyed pseudonym, in
    the order the files were added; the same whatever the batch size."""
    import hashlib
    import hmac
    from types import SimpleNamespace

    import vardfil.publish.datasets as datasets
    from vardfil.ledger import FileKey

    monkeypatch.setattr(datasets.VisitDatasets, "ACG_BATCH_ROWS", batch_rows)
    listing = pl.DataFrame(
        {
            "patient_id": ["P1", "P2", "P2", "P4"],  # P2 listed twice (a fault of the register: both rows)
            "kon": ["K"] * 4,
            "vardenhet_hsaid": ["U1", "U1", "U2", "U2"],
        }
    )

    def visits(rows: list[tuple[str, str | None, str | None]], day: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "patient_id": [p for p, _, _ in rows],
                "besoksdatum_dat": [dt.date(2026, 1, day)] * len(rows),
                "diagnos_1": [a for _, a, _ in rows],
                "diagnos_2": [b for _, _, b in rows],
            }
        )

    earlier = {
        FileKey(unit_hsaid="U1", file_type="VGP", period="2026-08"): visits(
            [("P1", "A01", None), ("P3", "B01", "B02")], 1
        ),
        FileKey(unit_hsaid="U2", file_type="VGP", period="2026-09"): visits(
            [("P2", "C01", "C02"), ("P4", None, "D01")], 2
        ),
    }
    own = {
        FileKey(unit_hsaid="U1", file_type="VGP", period="2026-10"): visits(
            [("P3", "E01", None), ("P1", "E02", "E03")], 3
        ),
        FileKey(unit_hsaid="U2", file_type="VGP", period="2026-10"): visits([("P2", "F01", None)], 4),
    }
    files = {key: SimpleNamespace(receipt_id=f"KV-{key.period}-{key.unit_hsaid}", key=key) for key in earlier}
    ledger = SimpleNamespace(
        files=SimpleNamespace(gallande_files=lambda since, before, as_of: {k: files[k] for k in earlier})
    )
    ds = datasets.VisitDatasets(
        ledger=ledger,  # type: ignore[arg-type]
        read_accepted=lambda f: earlier[f.key],
        pseudonym_key=b"k",
        period="2026-10",
        at=dt.datetime(2026, 11, 5, tzinfo=dt.UTC),
        listing=listing,
        out_dir=tmp_path,
    )
    for key, acc in own.items():
        ds.add(key, SimpleNamespace(receipt_id=f"KV-{key.unit_hsaid}"), acc)  # type: ignore[arg-type]
    ds.commit()

    def pseudonym(p: str) -> str:
        return hmac.new(b"k", p.encode(), hashlib.sha256).hexdigest()[:32]

    listed_at = {"P1": ["U1"], "P2": ["U1", "U2"], "P4": ["U2"]}
    expected = [
        (acc["besoksdatum_dat"][i], field, acc[field][i], key.period, key.unit_hsaid, vid, pseudonym(p))
        for key, acc in [*earlier.items(), *own.items()]
        for field in ("diagnos_1", "diagnos_2")
        for i, p in enumerate(acc["patient_id"])
        if acc[field][i] is not None
        for vid in listed_at.get(p, [])
    ]
    got = pl.read_parquet(tmp_path / "acg.parquet")
    cols = ["besoksdatum_dat", "diagnosfalt", "diagnos", "period", "vardenhet_hsaid", "listad_vid", "pseudonym"]
    assert sorted(got.select(cols).rows()) == sorted(expected)
    assert got["period"].to_list() == sorted(got["period"].to_list())  # earlier periods first, then the close's


def test_reh_history_reaches_every_earlier_visit_the_first_visit_window_can_hold(monkeypatch):
    """The close reads REH history from ``history_since`` on: for every day of every period (leap
    years included), the first day of its first-visit window lies in that period or later, and
    the period before it could not hold an earlier visit (an accepted row's date is in its own
    file's period, R31). The bound follows the price list's window."""
    import datetime as dt
    import types

    from filespec import price_list_for
    from filespec.calendar import Period
    from vardfil.publish import inputs as close

    for days in (None, 400, 28):
        if days is not None:
            monkeypatch.setattr(close, "price_list_for", lambda _p, d=days: types.SimpleNamespace(forstabesok_dagar=d))
        for n in range(6 * 12):  # 2025–2030: 2028 is a leap year
            p = Period(2025, 1).shift(n)
            window = days or price_list_for(str(p)).forstabesok_dagar
            since = Period.parse(close.history_since(str(p)))
            earliest = min(Period.of_date(d - dt.timedelta(days=window)) for d in _days(p))
            assert since == earliest, (str(p), days)
            assert since.last_day >= p.first_day - dt.timedelta(days=window)
    assert close.history_since("2028-03") == "2028-02"  # a window of 28 days, from 1 March of a leap year


def _days(p):
    import datetime as dt

    d = p.first_day
    while d <= p.last_day:
        yield d
        d += dt.timedelta(days=1)


def test_read_ahead_keeps_the_order_reads_few_ahead_and_fails_in_order():
    import threading

    from vardfil.month.close import read_ahead

    lock, started = threading.Lock(), []

    def read(i):
        with lock:
            started.append(i)
        if i == 7:
            raise OSError("unreadable")
        return i * i

    got = []

    def consume() -> None:
        for i, value in read_ahead(read, range(20)):
            with lock:
                # Never more than the one being used and one more read ahead.
                assert max(started) <= i + 1, (i, started)
            got.append((i, value))

    with pytest.raises(OSError, match="unreadable"):
        consume()
    assert got == [(i, i * i) for i in range(7)]  # in order, up to the failing read
    assert max(started) <= 8  # the reads stopped with the close
    assert list(read_ahead(read, [])) == []


def test_a_unit_file_is_conformed_to_the_visit_datasets_schema():
    import pyarrow as pa

    from vardfil.publish.datasets import _conform

    schema = pa.schema([("a", pa.string()), ("b", pa.int64()), ("c", pa.string())])
    table = pa.table({"c": ["x", None], "b": pa.array([1, 2], pa.int32()), "extra": [True, False]})
    got = _conform(table, schema)
    assert got.schema.equals(schema)
    assert got.to_pylist() == [{"a": None, "b": 1, "c": "x"}, {"a": None, "b": 2, "c": None}]
    same = pa.table({"a": ["p"], "b": pa.array([3], pa.int64()), "c": ["q"]})
    assert _conform(same, schema).equals(same)
