"""vardfil: the application — CLI, settings, and (later) ledger, intake, close and portal.

It wires the libraries together (``filespec`` ← ``validators`` ← ``reports``); the CLI, the portal
and the DAGs call the same functions here.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
