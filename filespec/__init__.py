"""filespec: the region's published rules and reference data, as data, with their loaders.

Nothing here validates; ``validators`` reads these objects. Dependency direction:
``filespec ← validators ← reports ← vardfil ← dags``.
"""

from filespec.fees import FeeTable, all_fee_tables, fee_table_for
from filespec.prices import PriceList, all_price_lists, price_list_for
from filespec.reference import (
    Reference,
    ReferenceDataError,
    Unit,
    listing_path,
    load_kva,
    load_listing,
    load_reference,
    load_units,
)
from filespec.spec import (
    FILE_TYPES,
    FieldSpec,
    FileRule,
    FileSpec,
    FileType,
    Policy,
    RowRule,
    Severity,
    all_specs,
    file_rule_messages,
    max_file_bytes,
    policy_for,
    spec_by_version,
    spec_for,
)

__all__ = [
    "FILE_TYPES",
    "FeeTable",
    "FieldSpec",
    "FileRule",
    "FileSpec",
    "FileType",
    "Policy",
    "PriceList",
    "Reference",
    "ReferenceDataError",
    "RowRule",
    "Severity",
    "Unit",
    "all_fee_tables",
    "all_price_lists",
    "all_specs",
    "fee_table_for",
    "file_rule_messages",
    "listing_path",
    "load_kva",
    "load_listing",
    "load_reference",
    "load_units",
    "max_file_bytes",
    "policy_for",
    "price_list_for",
    "spec_by_version",
    "spec_for",
]
