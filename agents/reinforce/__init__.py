"""SCIHCGRL's recurrent REINFORCE agent for ``CentralHash-v0`` (SCIHCGRL §2).

* :mod:`~hashgym.agents.reinforce.policy`: :class:`RecurrentHashPolicy`, the RNN cell looped
  once per bit (eqs. (6)–(9)), and what it emits and samples.
* :mod:`~hashgym.agents.reinforce.algorithm`: :class:`RecurrentReinforce`, the Monte-Carlo
  policy gradient with the supervised global term (eqs. (10)–(17)), its deviations from the
  paper, the environments it drives and its no-unpickle save format.

Every public name of both is importable from here.
"""

from hashgym.agents.reinforce.algorithm import BASELINES, RecurrentReinforce
from hashgym.agents.reinforce.policy import (
    HEADS,
    RECURRENT_INITS,
    IterationHeads,
    RecurrentHashPolicy,
    ReinforceError,
    action_type_of,
    check_observation_space,
)

__all__ = [
    "BASELINES",
    "HEADS",
    "RECURRENT_INITS",
    "IterationHeads",
    "RecurrentHashPolicy",
    "RecurrentReinforce",
    "ReinforceError",
    "action_type_of",
    "check_observation_space",
]
