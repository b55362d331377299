"""hashgym: learning to hash for image retrieval, as reinforcement learning.

Importing the package registers the Gymnasium environments ``HierHash-v1``, ``HierHash-v0``
and ``CentralHash-v0`` (see :mod:`hashgym.envs`).
"""

from hashgym import envs as _envs  # noqa: F401  (registers the HierHash and CentralHash ids)
from hashgym.bank import BankError, FeatureBank
from hashgym.errors import (
    AgentError,
    BenchError,
    CodesError,
    DataError,
    EnvError,
    HashgymError,
    SetupError,
)

__version__ = "0.5.0"
__all__ = ["AgentError", "BankError", "BenchError", "CodesError", "DataError", "EnvError",
           "FeatureBank", "HashgymError", "SetupError", "__version__"]
