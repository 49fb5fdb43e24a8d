"""``python -m ptycore_cli``: the same as the ``ptycore`` command."""

import sys

from . import main

sys.exit(main())
