"""``python -m hashgym.agents.zoo ALGO``: print the path of ALGO's zoo hyperparameter file."""

from __future__ import annotations

import sys

from hashgym.agents.zoo import ZOO_ALGOS, config_path

if len(sys.argv) != 2:
    sys.exit(f"usage: python -m hashgym.agents.zoo ALGO  (one of {', '.join(ZOO_ALGOS)})")
try:
    print(config_path(sys.argv[1]))
except ValueError as exc:
    sys.exit(str(exc))
