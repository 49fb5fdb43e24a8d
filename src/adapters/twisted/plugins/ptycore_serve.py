"""``twistd ptycore``: the Twisted server of ``ptycore serve`` as a twistd plugin.

Twisted imports every module of ``twisted/plugins`` to discover plugins, so this
one only names the module that does the work (:mod:`ptycore_cli._twistd`).
"""

from twisted.application.service import ServiceMaker

ptycore = ServiceMaker(
    "ptycore",
    "ptycore_cli._twistd",
    "An SSH server whose sessions run a ptycore application (Twisted Conch transport).",
    "ptycore",
)
