"""The package version, kept in one place that hatchling reads at build time.

A constant rather than ``importlib.metadata``, whose import chain pulls in
``email`` and ``socket``: the sans-IO core imports no networking module.
"""

__version__ = "0.1.0.dev0"
