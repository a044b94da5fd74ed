"""The root of every exception vardfil raises on purpose.

It lives in the bottom layer so that the libraries and the application share one tree (drawn in
``vardfil/errors.py``, which adds the application's branches). Findings about a received file are
never exceptions: they are data in its kvittens. An exception is a fault of the program, its
configuration or its surroundings, or a request that cannot be carried out as asked.
"""

from __future__ import annotations


class VardfilError(Exception):
    """Base of every vardfil exception.

    ``retryable`` says whether the same call may succeed later without anyone changing anything
    (a busy database, a store that was briefly unreachable). The DAG tasks retry exactly these.
    """

    retryable: bool = False


class InvalidPeriod(VardfilError, ValueError):
    """A reporting period that is not a real month written ``YYYY-MM``.

    Also a ``ValueError`` so that argparse types and form parsers treat it as bad input.
    """
