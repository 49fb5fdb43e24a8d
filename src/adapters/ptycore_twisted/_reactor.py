"""The global reactor, imported only when no reactor was injected.

Importing ``twisted.internet.reactor`` installs the default reactor, so it must not
happen at import time of this package: a test or an application may install
another reactor first, or pass one in.
"""

from __future__ import annotations

from typing import Any


def default_reactor() -> Any:
    """Return the installed global reactor (installing the default one if none is)."""
    from twisted.internet import reactor  # noqa: PLC0415

    return reactor
