"""validators: a file in, findings, a kvittens and the accepted rows out.

Also the vectorised patient-identifier module. The submission window it judges against is the
region calendar, ``filespec.calendar``. Never imports the ledger, Airflow or the web framework.

Exports are loaded lazily (PEP 562): importing one light module (the kvittens model, say) must not
pull in pandera, polars and pandas, which cost about a second per process.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "validators.engine": ["FileName", "ValidationResult", "parse_file_name", "receipt_id", "validate_file"],
    "validators.identifiers": ["classify", "make_personnummer", "make_reservnummer", "mask"],
    "validators.kvittens": ["FINDINGS_CAP", "Kvittens", "RowCounts", "Status", "findings_to_csv", "write_findings_csv"],
    "validators.reader": ["ContentError", "Records", "split_records"],
    "validators.rules": ["CHECKS", "FILE_CHECKS", "CheckContext", "SpecError", "build_schema"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:  # the export is whatever its module defines
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'validators' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
