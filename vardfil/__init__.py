"""vardfil: the application — the ledger, the intake, the month and its close, the publishers,
the portal and the API, the CLI and the Airflow tasks.

It wires the libraries together (``filespec`` ← ``validators`` ← ``reports``); the CLI, the portal
and the DAGs call the same functions here (``docs/architecture.md``: which question is answered
where).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
