"""The state of a period: per active unit and filtyp, the gällande file and the units with none."""

from __future__ import annotations

from filespec import Reference
from validators.window import window_for
from vardfil.ledger import FileKey, Ledger


def period_status(period: str, *, ledger: Ledger, reference: Reference) -> dict:
    """Every unit active in the period (from the unit register) with its gällande file, if any."""
    window = window_for(period)
    units = []
    for unit in sorted(reference.units.values(), key=lambda u: (u.filtyp, u.hsaid)):
        if not unit.active_in(period):
            continue
        key = FileKey(unit_hsaid=unit.hsaid, file_type=unit.filtyp, period=period)
        g = ledger.gallande(key)
        received = [f for f in ledger.files_for_period(period)
                    if f.unit_hsaid == unit.hsaid and f.file_type == unit.filtyp]
        units.append({
            "unit_hsaid": unit.hsaid,
            "namn": unit.namn,
            "file_type": unit.filtyp,
            "files_received": len(received),
            "gallande": None if g is None else {
                "receipt_id": g.receipt_id, "file_name": g.file_name, "status": g.status,
                "on_time": g.on_time, "received_at": g.received_at.astimezone(window.deadline.tzinfo).isoformat(),
                "rows_accepted": g.rows_accepted, "rows_rejected": g.rows_rejected,
            },
        })
    return {"period": period, "deadline": window.deadline.isoformat(), "units": units}
