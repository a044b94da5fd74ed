"""sample_data: a deterministic generator of realistic visit files and a committed sample month.

``SAMPLE_DIR`` holds ``reference/`` (unit register, listing, KVÅ lists copied from the region's
published lists), ``files/`` and ``arrivals.csv`` (when each file arrives). Regenerate with
``python -m sample_data.generate`` (same seed, same bytes).
"""

from pathlib import Path

SAMPLE_DIR = Path(__file__).parent
SAMPLE_REFERENCE = SAMPLE_DIR / "reference"
# Periods 2026-11 (specification 2026.1) and 2026-12 (2026.2), received in December and January.
BOUNDARY_DIR = SAMPLE_DIR / "boundary"

__all__ = ["BOUNDARY_DIR", "SAMPLE_DIR", "SAMPLE_REFERENCE"]
