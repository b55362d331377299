"""The errors hashgym raises for bad input: one base class and one class per area.

Every error hashgym raises for an argument, a file, a bank or a model it cannot use is one of
the area classes below, and its message names the argument or file and what would fit. The area
says which part of hashgym refused it:

- :class:`DataError`: images, image sets and folders, feature banks, feature extraction and
  picture embedding (the data a run reads or makes).
- :class:`EnvError`: an environment's parameters, state or actions.
- :class:`CodesError`: binary codes and their files, code indexes, metrics, hash centers,
  class-code reports and retrieval grids.
- :class:`AgentError`: training, checkpoints, model files, encoding, sweeps and the agents'
  algorithms.
- :class:`BenchError`: benchmark suites, baselines, their labels, and the claims check.
- :class:`SetupError`: what a run needs from its surroundings: an output path that loses
  nothing, a torch device this machine has, a Ray cluster.

Modules keep their historical names for these classes as aliases (``hashgym.bank.BankError`` is
:class:`DataError`, ``hashgym.agents.registry.TrainError`` is :class:`AgentError`, …), so code
that imports or catches them keeps working.

All derive from :class:`HashgymError`, which is a :class:`ValueError`: ``except
hashgym.HashgymError`` catches any of them, and code written against ``except ValueError``
keeps working.
"""

from __future__ import annotations

__all__ = ["AgentError", "BenchError", "CodesError", "DataError", "EnvError", "HashgymError",
           "SetupError"]


class HashgymError(ValueError):
    """Bad input to hashgym: an argument, a file, a bank or a model it cannot use. The message
    names the problem."""


class DataError(HashgymError):
    """Images, an image set or folder, a feature bank, or a feature extraction or embedding
    request that hashgym cannot use: missing, malformed, untrusted or inconsistent."""


class EnvError(HashgymError):
    """A hashgym environment got a bad argument, state or action."""


class CodesError(HashgymError):
    """Codes, a codes or index file, labels or metric arguments, hash-center settings, or what
    a report or a retrieval grid is asked to show, that do not fit."""


class AgentError(HashgymError):
    """A training, encoding or sweep request that cannot run, or a model, checkpoint or
    replay-buffer file that is missing, malformed or not hashgym's."""


class BenchError(HashgymError):
    """A benchmark suite, method, baseline, label set or option that cannot be used, or a
    folder the claims check cannot read."""


class SetupError(HashgymError):
    """An output path that would lose data, a device torch does not know or this machine does
    not have, or a Ray cluster that is missing or cannot be reached."""
