"""Personnummer kept out of what is written for people and machines to read later: the audit log,
logs, file names shown on pages. The finding of a number is ``validators.identifiers.mask_text``
(every form the region writes, masked when its date is real); this module applies it to the
shapes the application writes."""

from __future__ import annotations

import re
from typing import Any

from validators.identifiers import mask_text

# Digests and receipt ids are hex: a run of ten digits inside one is no person's number, and
# masking it would break the reference it is.
_DIGEST = re.compile(r"(?:KV-)?[0-9a-f]{16,}")


def masked(value: Any) -> Any:
    """``value`` with every person number in its texts masked: strings, and the strings inside
    lists and dicts (keys included), recursively; other values as they are."""
    if isinstance(value, str):
        return value if _DIGEST.fullmatch(value) else mask_text(value)
    if isinstance(value, dict):
        return {masked(k): masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value
