"""glibc's allocator settings for a server that moves bulk data.

Every read of a bulk transfer allocates and frees a few hundred KiB (the socket
read, decrypted packets, the data handed to the application). With glibc's default
settings, freeing them shrinks the heap back (``M_TRIM_THRESHOLD``) and the next
read faults the same pages in again: on a bulk upload that is about a quarter of
``ptycore serve``'s CPU time, most of it in the kernel. Keeping up to 8 MiB of freed
memory, and serving blocks of up to 1 MiB from the heap instead of fresh mappings
(``M_MMAP_THRESHOLD``), removes that churn (mallopt(3)).
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

M_TRIM_THRESHOLD: Final = -1
M_MMAP_THRESHOLD: Final = -3
TRIM_THRESHOLD: Final = 8 * 1024 * 1024
MMAP_THRESHOLD: Final = 1024 * 1024


def keep_freed_memory() -> bool:
    """Apply the settings above on glibc; returns whether they were applied."""
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")  # these mallopt numbers are glibc's
    except (ValueError, OSError):
        return False
    if not glibc:
        return False
    libc = ctypes.CDLL(None)
    return bool(
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
