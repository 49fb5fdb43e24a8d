"""What the Twisted and anyio adapters share, free of any I/O framework.

The built-in applications must look the same on every adapter, and ``ptycore
serve`` must let in the same people whichever adapter runs it, so the text the
``info`` application prints, the environment the ``shell`` application builds and
the parsing of authorized keys and password files live here, once.
"""
