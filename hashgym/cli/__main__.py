"""``python -m hashgym.cli``: the ``hashgym`` command."""

import sys

from hashgym.cli import main

sys.exit(main())
