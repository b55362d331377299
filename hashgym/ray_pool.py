"""Functions as Ray tasks behind a :class:`concurrent.futures.Executor`-like pool: the ``ray``
executor of ``hashgym bench`` and ``hashgym tune``.

:class:`RayPool` has the two methods of :class:`concurrent.futures.Executor` that
:func:`hashgym.benchmarks.runner.run_benchmark` and :func:`hashgym.agents.tune.tune` use,
``submit`` and ``shutdown``, so they drive Ray exactly as they drive a local process pool: each
benchmark cell (bank × method × bits × seed), or each sweep worker, becomes one Ray task; the
driver waits on the tasks' futures and alone writes the results.

* **Where it runs.** Without an address, a local Ray is started for the run with ``jobs ×
  cpus_per_task`` CPUs and shut down at the end. With ``address`` (``"auto"``, or
  ``"ray://host:10001"``), the tasks go to that cluster, which is left running; ``jobs`` is then
  the cluster's business.
* **What a task asks for.** ``cpus_per_task`` CPUs (the caller's torch threads) and
  ``gpus_per_task`` GPUs (0 unless the caller runs its methods on a GPU; Ray then sets
  ``CUDA_VISIBLE_DEVICES`` of the task to the GPUs it was given).
* **Data.** The object passed as ``shared`` (the runner's banks, a sweep's settings) is put in
  Ray's object store once; every task reads it from there (numpy arrays without a copy on the
  same node) instead of receiving its own copy.
* **Failures.** A task that raises ends its future with the function's own exception (not
  Ray's wrapper of it), one whose worker dies with Ray's error; the caller reports it and the
  others go on. Tasks are not retried (``max_retries=0``): what failed is left for a rerun.

Ray is an optional extra (``pip install -e ".[ray]"``); without it :class:`RayPool` raises
:class:`RayPoolError` saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from hashgym.errors import SetupError

__all__ = ["RayPool", "RayPoolError"]

logger = logging.getLogger(__name__)


#: This module's name for :class:`~hashgym.errors.SetupError` (an alias).
RayPoolError = SetupError


def _call_with_shared(fn: Callable[..., Any], shared: Any, *args: Any) -> Any:
    """The body of every task: ``fn(shared, *args)`` (Ray resolves ``shared``'s object ref)."""
    return fn(shared, *args)


class RayPool:
    """Run functions as Ray tasks behind a :class:`concurrent.futures.Executor`-like interface.

    :param jobs: CPUs of a local Ray started for the run, in tasks (``jobs × cpus_per_task``
        CPUs); ignored with ``address``.
    :param cpus_per_task: CPUs each task asks for.
    :param shared: an object every task receives as its first argument, put in the object
        store once.
    :param address: an existing Ray cluster (``"auto"`` or an address); ``None`` starts a
        local one (which counts the machine's GPUs itself).
    :param gpus_per_task: GPUs each task asks for (a fraction shares one GPU between tasks).
    :raises RayPoolError: when Ray is not installed, or cannot be started or reached.
    """

    def __init__(self, jobs: int, cpus_per_task: int, shared: Any,
                 address: str | None = None, gpus_per_task: float = 0.0) -> None:
        try:
            import ray
        except ImportError as exc:
            raise RayPoolError(
                "the ray executor needs Ray, an optional extra: pip install -e \".[ray]\" "
                f"(or pip install \"hashgym[ray]\") ({exc})"
            ) from exc
        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            try:
                if address is None:
                    ray.init(num_cpus=int(jobs) * int(cpus_per_task), include_dashboard=False,
                             logging_level=logging.WARNING, log_to_driver=False)
                else:
                    ray.init(address=address, logging_level=logging.WARNING)
            except Exception as exc:  # ConnectionError, RuntimeError, ValueError from Ray
                where = "a local Ray" if address is None else f"the Ray cluster at {address!r}"
                raise RayPoolError(f"cannot start {where}: {type(exc).__name__}: {exc}") from exc
            self._owns_ray = True
        self._shared = ray.put(shared)
        self._task = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task,
                                max_retries=0)(_call_with_shared)
        self._refs: list[Any] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Start ``fn(shared, *args)`` as a task; its result or error arrives in the future.

        ``fn`` must be importable by the workers (a module-level function of an installed
        module), as for a process pool.
        """
        ref = self._task.remote(fn, self._shared, *args)
        self._refs.append(ref)
        relayed: Future[Any] = Future()
        task_error = self._ray.exceptions.RayTaskError

        def relay(done: Future[Any]) -> None:
            try:
                relayed.set_result(done.result())
            except task_error as exc:  # the function's own error, not Ray's wrapper of it
                cause = getattr(exc, "cause", None)
                relayed.set_exception(cause if isinstance(cause, BaseException) else exc)
            except BaseException as exc:  # noqa: BLE001 (a dead worker, a cancelled task)
                relayed.set_exception(exc)

        ref.future().add_done_callback(relay)
        return relayed

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Cancel unfinished tasks when asked, and stop the local Ray this pool started."""
        if cancel_futures and self._refs:
            _, unfinished = self._ray.wait(self._refs, num_returns=len(self._refs),
                                               timeout=0)
            for ref in unfinished:
                try:
                    self._ray.cancel(ref, force=True)
                except Exception as exc:  # noqa: BLE001 (a task that ended meanwhile)
                    logger.debug("could not cancel a task: %s", exc)
        self._refs = []
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False
