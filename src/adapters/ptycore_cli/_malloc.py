"""glibc's allocator settings for a server that moves bulk data.

Every read and every send of a bulk transfer allocates and frees a few hundred KiB
(the 256 KiB socket read, packets, the data handed to the application, joined up
to 256 KiB). With glibc's default settings, freeing them shrinks the heap back
(``M_TRIM_THRESHOLD``) or unmaps them (``M_MMAP_THRESHOLD``), and the next one
faults the same pages in again: about a quarter of ``ptycore serve``'s CPU time in
bulk transfers, most of it in the kernel. Keeping up to 16 MiB of freed memory, and
serving blocks of up to 4 MiB from the heap, removes that churn (mallopt(3)). It
does not change the memory of idle sessions (benchmark figure 4 is the same
without it).
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

M_TRIM_THRESHOLD: Final = -1
M_MMAP_THRESHOLD: Final = -3
TRIM_THRESHOLD: Final = 16 * 1024 * 1024
MMAP_THRESHOLD: Final = 4 * 1024 * 1024


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
