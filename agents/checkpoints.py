"""The output folder of a training run: config, logs, checkpoints, resume and the final model.

:class:`RunStore` is what :func:`hashgym.agents.train.train` writes with ``out=DIR``:

* ``DIR/config.json``: the run's arguments;
* ``DIR/logs/from-<step>/``: SB3's log of each attempt (a resume opens a new folder, so no
  attempt's log is truncated);
* ``DIR/checkpoints/``: every ``checkpoint_every`` steps the model, the level curriculum's state
  (level, ``prev_codes``, code memory) and, for off-policy algorithms, the replay buffer, then
  ``state.json`` pointing at them. Each file is written atomically and ``state.json`` last, so a
  run killed at any moment leaves a complete checkpoint;
* ``DIR/model.zip``: the final model (:mod:`hashgym.agents.saving`).

A checkpoint is resumed only into a run whose arguments, all but the step budget, match
(:class:`~hashgym.agents.registry.TrainError` names those that differ). Nothing is unpickled:
models and buffers load through :mod:`hashgym.agents.saving`, states with
``np.load(allow_pickle=False)``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure

from hashgym.agents.curriculum import LevelCurriculum, LevelState
from hashgym.agents.registry import TrainError
from hashgym.agents.saving import load_replay_buffer, save_model, save_replay_buffer
from hashgym.atomic import atomic_write
from hashgym.envs import is_hierhash
from hashgym.identity import identity_fields
from hashgym.npyfile import check_declared_sizes

__all__ = ["RunCheckpoints", "RunStore"]

logger = logging.getLogger(__name__)


class RunStore:
    """The output folder of one :func:`hashgym.agents.train.train` run.

    :param folder: the run's folder (``out``).
    :param info: the run's description (``config.json``; everything in it but the step budget
        must match for a checkpoint to be resumed).
    :param every: environment steps between checkpoints.
    :param save_buffer: include an off-policy algorithm's replay buffer in checkpoints.
    :raises TrainError: for ``every < 1``.
    """

    def __init__(self, folder: Path, info: dict[str, Any], every: int, save_buffer: bool) -> None:
        self.folder = folder
        self.ckpt_dir = folder / "checkpoints"
        self.info = info
        self.every = int(every)
        if self.every < 1:
            raise TrainError(f"checkpoint_every must be >= 1, got {every}")
        self.save_buffer = save_buffer
        self.model: Any = None

    # -------------------------------------------------------------- config
    def _identity(self, info: dict[str, Any]) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed (everything but the step budget)."""
        # bank_path: where the bank was, resolved; env_kwargs["bank"] says which bank it is
        # resolved: the code shape the settings give (recorded, not a setting of its own)
        return identity_fields(info, ("level_timesteps", "num_timesteps", "observation_space",
                                      "action_space", "trained_levels", "bank_path",
                                      "resolved"))

    def write_config(self) -> None:
        """Write ``config.json`` atomically."""
        with atomic_write(self.folder / "config.json") as handle:
            handle.write(json.dumps(self.info, indent=2, sort_keys=True).encode())

    def logger(self, tensorboard: bool | None, verbose: int, step: int) -> Any:
        """SB3's logger writing to ``logs/from-<step>`` (a new folder per attempt)."""
        formats = ["csv"] + (["stdout"] if verbose else [])
        have_tb = importlib.util.find_spec("tensorboard") is not None
        if tensorboard and not have_tb:
            raise TrainError("tensorboard=True needs the tensorboard package "
                             "(pip install tensorboard)")
        if tensorboard or (tensorboard is None and have_tb):
            formats.append("tensorboard")
        folder = self.folder / "logs" / f"from-{step:09d}"
        attempt = 1
        while folder.exists() and any(folder.iterdir()):
            attempt += 1  # the same step again (a rerun of a finished run, a second resume)
            folder = self.folder / "logs" / f"from-{step:09d}.{attempt}"
        return configure(str(folder), formats)

    def clear(self) -> None:
        """Forget the last checkpoint (``resume=False``)."""
        state = self.ckpt_dir / "state.json"
        if state.exists():
            state.unlink()

    # -------------------------------------------------------------- checkpoints
    def callback(self, curriculum: LevelCurriculum) -> RunCheckpoints:
        """The SB3 callback that checkpoints ``curriculum`` every :attr:`every` steps."""
        return RunCheckpoints(self, curriculum)

    def checkpoint(self, curriculum: LevelCurriculum, final: bool = False) -> None:
        """Write the model, the curriculum's state and the replay buffer, then ``state.json``
        pointing at them (each atomically, ``state.json`` last), and drop older checkpoints."""
        model = curriculum.model
        step = int(model.num_timesteps)
        state = curriculum.state
        tag = f"ckpt-{step:09d}"
        info = {**self.info, "num_timesteps": step}
        save_model(model, self.ckpt_dir / f"{tag}.zip", info)
        extra: dict[str, np.ndarray] = {"index": np.asarray(state.index),
                                        "level_start": np.asarray(state.level_start)}
        if state.prev_codes is not None:
            extra["prev_codes"] = np.asarray(state.prev_codes, dtype=np.uint8)
        memory = curriculum.memory if is_hierhash(self.info["env_id"]) else None
        if memory is not None:
            extra.update({f"memory_{key}": value for key, value in memory.items()})
        with atomic_write(self.ckpt_dir / f"{tag}.npz") as handle:
            np.savez(handle, **extra)
        record = {"num_timesteps": step, "model": f"{tag}.zip", "state": f"{tag}.npz",
                  "replay_buffer": None, "level_index": int(state.index), "final": final,
                  "identity": self._identity(self.info)}
        buffer = getattr(model, "replay_buffer", None)
        if self.save_buffer and buffer is not None:
            save_replay_buffer(buffer, self.ckpt_dir / f"{tag}-replay.npz")
            record["replay_buffer"] = f"{tag}-replay.npz"
        with atomic_write(self.ckpt_dir / "state.json") as handle:
            handle.write(json.dumps(record, indent=2, sort_keys=True).encode())
        keep = {record["model"], record["state"], record["replay_buffer"], "state.json"}
        for old in self.ckpt_dir.iterdir():
            if old.name not in keep and old.name.startswith("ckpt-"):
                old.unlink(missing_ok=True)
        logger.info("checkpoint at step %d (level index %d) in %s", step, state.index,
                    self.ckpt_dir)

    def restore(self, model: Any) -> Any:
        """Load the last checkpoint into ``model``; return the curriculum state (or ``None``).

        :raises TrainError: naming the folder, when the checkpoint is of another run, lacks a
            file, or is damaged.
        """
        path = self.ckpt_dir / "state.json"
        if not path.exists():
            return None
        try:
            return self._restore(model, json.loads(path.read_text()))
        except TrainError:
            raise
        except (OSError, ValueError, KeyError, TypeError, EOFError, RecursionError,
                RuntimeError, zipfile.BadZipFile) as exc:
            raise self._damaged(exc) from exc

    def _damaged(self, exc: Exception) -> TrainError:
        """The error for a checkpoint that cannot be read back, naming what failed."""
        return TrainError(
            f"the checkpoint in {self.ckpt_dir} is damaged ({type(exc).__name__}: {exc}); "
            f"delete that folder to start the run over, or pass resume=False (--no-resume)")

    def _restore(self, model: Any, record: Any) -> Any:
        """:meth:`restore` once ``state.json`` is read: every error is the caller's to name."""

        if not isinstance(record, dict):
            raise self._damaged(TypeError("state.json is not a JSON object"))
        for name in ("model", "state", "replay_buffer"):
            if record.get(name) and not (self.ckpt_dir / record[name]).is_file():
                if name == "replay_buffer" and getattr(model, "replay_buffer", None) is None:
                    continue
                raise TrainError(f"the checkpoint in {self.ckpt_dir} lacks its {name} file "
                                 f"{record[name]!r}; delete that folder to start the run over, "
                                 f"or pass resume=False (--no-resume)")
        mine, theirs = self._identity(self.info), record.get("identity", {})
        if mine != theirs:
            differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise TrainError(
                f"{self.folder} holds a checkpoint of a different run (differs in: "
                f"{', '.join(differ)}); use another out folder or resume=False (--no-resume)"
            )
        model.set_parameters(str(self.ckpt_dir / record["model"]), exact_match=True,
                             device=model.device)
        model.num_timesteps = int(record["num_timesteps"])
        model._num_timesteps_at_start = model.num_timesteps
        if record.get("replay_buffer") and getattr(model, "replay_buffer", None) is not None:
            try:
                load_replay_buffer(model.replay_buffer, self.ckpt_dir / record["replay_buffer"])
            except TrainError as exc:  # a buffer file that does not fit this run's buffer
                raise self._damaged(exc) from exc
        check_declared_sizes(self.ckpt_dir / record["state"], TrainError, "checkpoint state file")
        with np.load(self.ckpt_dir / record["state"], allow_pickle=False) as data:
            memory = {key[len("memory_"):]: data[key] for key in data.files
                      if key.startswith("memory_")}
            if "memory" in data.files:  # checkpoints of hashgym 0.1: the memory alone
                memory["memory"] = data["memory"]
            state = LevelState(
                index=int(data["index"]), level_start=int(data["level_start"]),
                prev_codes=data["prev_codes"] if "prev_codes" in data.files else None,
                memory=memory or None,
            )
        logger.info("resuming from step %d at level index %d", model.num_timesteps, state.index)
        return state

    def save_final(self, model: Any) -> Path:
        """Save the trained model as ``model.zip``."""
        return save_model(model, self.folder / "model.zip", model.hashgym_info)


class RunCheckpoints(BaseCallback):
    """Checkpoints a :class:`RunStore`'s run every ``store.every`` environment steps.

    :param store: the run's folder.
    :param curriculum: the level curriculum whose model and state are saved.
    """

    def __init__(self, store: RunStore, curriculum: LevelCurriculum) -> None:
        super().__init__()
        self.store = store
        self.curriculum = curriculum
        self.last = -1

    def _on_training_start(self) -> None:
        if self.last < 0:
            self.last = self.model.num_timesteps

    def _on_step(self) -> bool:
        if self.model.num_timesteps - self.last >= self.store.every:
            self.store.checkpoint(self.curriculum)
            self.last = self.model.num_timesteps
        return True
