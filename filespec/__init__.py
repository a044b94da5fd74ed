"""filespec: the region's published rules and reference data, as data, with their loaders.

Nothing here validates; ``validators`` reads these objects. Dependency direction:
``filespec ← validators ← reports ← vardfil ← dags``.
"""

from filespec.fees import FeeTable, all_fee_tables, fee_table_for
from filespec.reference import (
    Reference,
    ReferenceDataError,
    Unit,
    load_kva,
    load_reference,
    load_units,
    period_bounds,
)
from filespec.spec import (
    FILE_TYPES,
    FieldSpec,
    FileRule,
    FileSpec,
    RowRule,
    Severity,
    all_specs,
    file_rule_messages,
    spec_for,
)

__all__ = [
    "FILE_TYPES",
    "FeeTable",
    "FieldSpec",
    "FileRule",
    "FileSpec",
    "Reference",
    "ReferenceDataError",
    "RowRule",
    "Severity",
    "Unit",
    "all_fee_tables",
    "all_specs",
    "fee_table_for",
    "file_rule_messages",
    "load_kva",
    "load_reference",
    "load_units",
    "period_bounds",
    "spec_for",
]
