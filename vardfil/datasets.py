"""The analysts' one-liner, ``from vardfil import datasets; datasets.underlag()``, as documented
in docs/analys.md and used in their notebooks: the reader is ``vardfil.analysis``."""

from vardfil.analysis import DatasetsNotFound, deliveries, underlag, visits

__all__ = ["DatasetsNotFound", "deliveries", "underlag", "visits"]
