"""validators: a file in, findings, a kvittens and the accepted rows out.

Also the vectorised patient-identifier module and the submission window (the Swedish calendar).
Never imports the ledger, Airflow or the web framework.
"""

from validators.engine import FileName, ValidationResult, parse_file_name, receipt_id, validate_file
from validators.identifiers import classify, make_personnummer, make_reservnummer, mask
from validators.kvittens import (
    FINDINGS_CAP,
    Kvittens,
    RowCounts,
    Status,
    findings_to_csv,
    write_findings_csv,
)
from validators.reader import ContentError, Records, split_records
from validators.rules import CHECKS, CheckContext, SpecError, build_schema
from validators.window import (
    STOCKHOLM,
    Window,
    is_vardag,
    nth_vardag,
    parse_instant,
    window_for,
)

__all__ = [
    "CHECKS",
    "FINDINGS_CAP",
    "STOCKHOLM",
    "CheckContext",
    "ContentError",
    "FileName",
    "Kvittens",
    "Records",
    "RowCounts",
    "SpecError",
    "Status",
    "ValidationResult",
    "Window",
    "build_schema",
    "classify",
    "findings_to_csv",
    "is_vardag",
    "make_personnummer",
    "make_reservnummer",
    "mask",
    "nth_vardag",
    "parse_file_name",
    "parse_instant",
    "receipt_id",
    "split_records",
    "validate_file",
    "window_for",
    "write_findings_csv",
]
