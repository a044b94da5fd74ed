"""The closed periods as pandas DataFrames: what the region's analysts load to look at a year
(the reader; ``vardfil.publish.datasets`` writes them).

Every close adds its period to three Parquet datasets under ``$VARDFIL_OUTPUT/datasets/``
(default ``$VARDFIL_HOME/underlag/datasets/``), partitioned by period (``period=YYYY-MM/``), which
pyarrow, pandas and Excel's Power Query also read directly:

- ``underlag(periods=None)``: every underlag line (``period``, ``file_type``, ``unit_hsaid``,
  ``component``, ``quantity``, ``unit_price``, ``amount``, ``corrected_period``) — the amounts are
  ``decimal.Decimal`` objects, exact to the öre (``df.amount.sum()`` is exact; convert with
  ``.astype(float)`` only for a picture);
- ``visits(periods=None)``: the accepted visits the closes paid on, with a keyed pseudonym instead
  of the patient id;
- ``deliveries(periods=None)``: per period and active unit, the file the close took (or the late
  one), when it arrived, whether on time, its rows and rejected share, and the delivery
  (``i tid``, ``sen``, ``saknas``).

``periods``: ``None`` for all, or an iterable of ``"YYYY-MM"``. ``root``: the datasets folder
(default: the one the settings name, ``dataset_root(VARDFIL_OUTPUT)``). A folder that does not
exist is an error that says where it looked and which setting decides it, never an empty frame
(an analyst in another working directory would otherwise see "no data").
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.dataset as ds

from filespec.calendar import Period
from vardfil.settings import load_settings

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DatasetsNotFound", "dataset_root", "deliveries", "underlag", "visits"]


class DatasetsNotFound(FileNotFoundError):
    """No datasets folder where the reader looked."""


def dataset_root(output: Path) -> Path:
    """Where the datasets across periods live: ``<output>/datasets/<name>/period=YYYY-MM/``."""
    return output / "datasets"


def _root(root: Path | None) -> Path:
    if root is not None:
        found = Path(root)
        if not found.is_dir():
            raise DatasetsNotFound(f"no datasets folder at {found.resolve()} (the root= given)")
        return found
    settings = load_settings()
    found = dataset_root(settings.output)
    if not found.is_dir():
        raise DatasetsNotFound(
            f"no datasets folder at {found} (from VARDFIL_OUTPUT, else $VARDFIL_HOME/underlag, with "
            f"VARDFIL_HOME={settings.home}): set VARDFIL_HOME (or VARDFIL_OUTPUT) to the folder the closes "
            "wrote, e.g. the checkout's var/, or pass root=…/underlag/datasets"
        )
    return found


def _load(name: str, periods: Iterable[str | Period] | None, root: Path | None) -> pd.DataFrame:
    import pandas as pd

    folder = _root(root) / name
    if not folder.is_dir():
        return pd.DataFrame()  # the root is there: this dataset has no period yet
    data = ds.dataset(folder, format="parquet", partitioning="hive")
    table = data.to_table(
        filter=ds.field("period").isin([str(Period.parse(p)) for p in periods]) if periods is not None else None
    )
    frame: pd.DataFrame = table.to_pandas()
    # The partition key arrives as a dictionary (categorical) column: plain text, as in every file.
    frame["period"] = frame["period"].astype(str)
    first = ["period"] + [c for c in frame.columns if c != "period"]
    return frame[first].sort_values(["period"], kind="stable").reset_index(drop=True)


def underlag(periods: Iterable[str | Period] | None = None, *, root: Path | None = None) -> pd.DataFrame:
    """The underlag lines of the closed periods (amounts as exact ``Decimal``)."""
    return _load("underlag", periods, root)


def visits(periods: Iterable[str | Period] | None = None, *, root: Path | None = None) -> pd.DataFrame:
    """The accepted, pseudonymised visits the closes paid on."""
    return _load("besok", periods, root)


def deliveries(periods: Iterable[str | Period] | None = None, *, root: Path | None = None) -> pd.DataFrame:
    """How each active unit delivered in each closed period."""
    return _load("leveranser", periods, root)
