"""The diagnostic ladder of the hierarchical DQN on ``HierHash-v0`` (not a test).

Usage::

    python -m hashgym.benchmarks.diagnose_hierhash [--bank cifar100-dev] [--teacher dch]
        [--frozen-steps 4000000] [--paper-steps 800000] [--seed 0] [--skip-shipped]

Each rung puts the same agent one obstacle further from a good hash function, all at 12 bits,
NDCG@20 with graded relevance (query split against the database); the gap between two rungs
names what the later rung adds:

1. **Teacher**: the codes of the best baseline (``--teacher``, DCH by default): the target.
2. **Capacity**: the Q-network's architecture (:class:`~hashgym.agents.dqn.HashQFeatures` and
   the ``net_arch`` of :data:`~hashgym.agents.dqn.DQN_DEFAULTS`, eight outputs) trained
   *supervised* to emit the teacher's 3-bit chunks (cross-entropy, the teacher's earlier bits as
   the ``code`` observation). Teacher → capacity: what the network cannot represent.
3. **Learner**: the DQN against a *frozen* code memory holding the teacher's codes (level-1
   triplets with any other class as the negative, ``ρ = 1``, no split, the env's default reward,
   no generation ever ends). Capacity → learner:
   what eq. (1) and the DQN cannot extract from a fixed, good target.
4. **As shipped**: the default recipe (``hierarchical_dqn()``: pure RL from random class
   codes, the level curriculum, memory generations). Learner → shipped: the cost of a moving target that
   starts from nothing, and of exploration.
5. **Paper setting**: ``PAPER_SETTINGS`` (one sampled triplet, a memory every episode rewrites,
   4,000 / 1,000 triplets with sibling negatives), ``--paper-steps`` steps on 64 images per
   step.

The ladder is a tool for choosing what to change, so it runs on the development bank by default
(``cifar100-dev``: validation queries its backbone never saw, none of them a test image); a
shared test preset is refused unless ``--on-test-bank`` is given.

Prints the machine, versions, date, seed and the wall time of every rung. The recorded output
is ``benchmarks/results/diagnose_hierhash.txt``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import numpy as np
import stable_baselines3
import torch
from torch import nn

import hashgym
from hashgym.agents.dqn import DQN_DEFAULTS, HashQFeatures
from hashgym.agents.encode import encode
from hashgym.agents.train import hierarchical_dqn, train
from hashgym.bank import FeatureBank
from hashgym.benchmarks.baselines import make_baseline
from hashgym.envs.hierhash import PAPER_SETTINGS, HierHashVectorEnv
from hashgym.metrics import evaluate
from hashgym.protocols import development_twin, resolve_bank

N_BITS = 12
BITS_PER_STEP = 3


def _ndcg(bank: FeatureBank, query: np.ndarray, database: np.ndarray) -> float:
    q, db = bank.indices("query"), bank.indices("database")
    return float(evaluate(query, database, bank.labels[q], bank.labels[db], ["NDCG@20"],
                          relevance="hierarchy")["NDCG@20"])


def _agent_ndcg(model: object, bank: FeatureBank) -> float:
    return _ndcg(bank, encode(model, bank, "query"), encode(model, bank, "database"))


def _row(name: str, ndcg: float, seconds: float, note: str = "") -> None:
    print(f"{name:<34} {ndcg:>8.4f} {seconds:>9.1f}  {note}", flush=True)


def supervised_capacity(bank: FeatureBank, teacher_train: np.ndarray, epochs: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Rung 2: the Q-network's architecture trained to emit the teacher's chunks.

    :return: the query codes, the database codes and the agreement with the teacher's training
        bits.
    """
    torch.manual_seed(seed)
    env = HierHashVectorEnv(num_envs=1, bank=bank, n_bits=N_BITS, bits_per_step=BITS_PER_STEP)
    space = env.single_observation_space
    extractor = HashQFeatures(space, **DQN_DEFAULTS["policy_kwargs"]["features_extractor_kwargs"])
    layers: list[nn.Module] = []
    width = extractor.features_dim
    for hidden in DQN_DEFAULTS["policy_kwargs"]["net_arch"]:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, 2**BITS_PER_STEP))
    head = nn.Sequential(*layers)
    params = list(extractor.parameters()) + list(head.parameters())
    optimiser = torch.optim.Adam(params, lr=1e-3)

    feats = torch.as_tensor(np.asarray(bank.features[bank.indices("train")], dtype=np.float32))
    bits = torch.as_tensor(teacher_train.astype(np.float32))
    steps = N_BITS // BITS_PER_STEP
    # the action that emits each chunk: its bits read most significant first
    weights = 2 ** np.arange(BITS_PER_STEP - 1, -1, -1)
    chunks = teacher_train.astype(np.int64).reshape(-1, steps, BITS_PER_STEP)
    targets = torch.as_tensor(chunks @ weights)
    n = feats.shape[0]
    generator = torch.Generator().manual_seed(seed)

    def logits(f: torch.Tensor, code: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return head(extractor({"features": f, "code": code, "t": t}))

    for _ in range(epochs):
        for batch in torch.randperm(n, generator=generator).split(256):
            loss = torch.zeros(())
            for s in range(steps):
                code = torch.zeros(batch.numel(), N_BITS)
                code[:, : s * BITS_PER_STEP] = bits[batch, : s * BITS_PER_STEP] * 2 - 1
                t = torch.full((batch.numel(), 1), s / steps)
                loss = loss + nn.functional.cross_entropy(logits(feats[batch], code, t),
                                                          targets[batch, s])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()

    @torch.no_grad()
    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        out = logits(torch.as_tensor(obs["features"]), torch.as_tensor(obs["code"]),
                     torch.as_tensor(obs["t"]))
        return out.argmax(1).numpy()

    query = env.encode(act, bank.indices("query"))
    database = env.encode(act, bank.indices("database"))
    agreement = float((env.encode(act, bank.indices("train")) == teacher_train).mean())
    return query, database, agreement


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", default="cifar100-dev",
                        help="the bank to diagnose (default cifar100-dev, the development twin)")
    parser.add_argument("--on-test-bank", action="store_true",
                        help="allow a shared test preset (cifar100, ...), whose queries are a "
                             "test set")
    parser.add_argument("--teacher", default="dch", help="the baseline whose codes are the target")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the capacity rung")
    parser.add_argument("--frozen-steps", type=int, default=4_000_000,
                        help="environment steps of the learner rung")
    parser.add_argument("--paper-steps", type=int, default=800_000,
                        help="environment steps of the paper-setting rung")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-shipped", action="store_true",
                        help="leave out the as-shipped rung (its budget is the longest)")
    args = parser.parse_args(argv)
    twin = development_twin(args.bank)
    if twin is not None and not args.on_test_bank:
        parser.error(f"{args.bank}'s queries are a test set: diagnose on its development twin "
                     f"{twin}, or pass --on-test-bank")
    torch.set_num_threads(1)
    print("# diagnose_hierhash")
    print(f"date      {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine   {platform.machine()} {os.cpu_count()} CPUs (shared), {platform.system()} "
          f"{platform.release()}, load {os.getloadavg()[0]:.1f}")
    print(f"versions  python {platform.python_version()}, hashgym {hashgym.__version__}, "
          f"numpy {np.__version__}, torch {torch.__version__}, SB3 {stable_baselines3.__version__}")
    print(f"settings  {vars(args)}")
    bank = resolve_bank(args.bank)
    train_rows = bank.indices("train")
    print(f"\n## {args.bank}: {len(train_rows):,} training images, {N_BITS} bits, NDCG@20 "
          f"(graded relevance), query vs database, seed {args.seed}")
    print(f"{'rung':<34} {'NDCG@20':>8} {'seconds':>9}  note")

    start = time.perf_counter()
    itq = make_baseline("itq", N_BITS, seed=args.seed).fit(bank)
    _row("ITQ (reference)", _ndcg(bank, itq.encode(bank.view("query").features),
                                  itq.encode(bank.view("database").features)),
         time.perf_counter() - start)
    start = time.perf_counter()
    teacher = make_baseline(args.teacher, N_BITS, seed=args.seed).fit(bank)
    teacher_train = teacher.encode(bank.view("train").features)
    _row(f"1 teacher ({args.teacher})", _ndcg(bank, teacher.encode(bank.view("query").features),
                                              teacher.encode(bank.view("database").features)),
         time.perf_counter() - start)

    start = time.perf_counter()
    query, database, agreement = supervised_capacity(bank, teacher_train, args.epochs, args.seed)
    _row("2 capacity (supervised Q-net)", _ndcg(bank, query, database),
         time.perf_counter() - start, f"{agreement:.1%} of training bits agree, "
         f"{args.epochs} epochs")

    result = train("dqn", "HierHash-v0",
                   {"bank": bank, "n_bits": N_BITS, "bits_per_step": BITS_PER_STEP,
                    "prev_codes": teacher_train, "rho": 1.0, "memory_generation": 10**15,
                    # the teacher's codes exactly, against any other class
                    "level_split": 0, "sibling_negatives": False},
                   levels=[1], level_timesteps=[args.frozen_steps], seed=args.seed)
    agreement = float((encode(result.model, bank, "train") == teacher_train).mean())
    _row("3 learner (DQN, frozen teacher)", _agent_ndcg(result.model, bank), result.wall_time,
         f"{agreement:.1%} of training bits agree, {result.timesteps:,} steps")

    if not args.skip_shipped:
        result = hierarchical_dqn(bank, seed=args.seed)
        _row("4 as shipped (hierarchical_dqn)", _agent_ndcg(result.model, bank),
             result.wall_time, f"pure RL, {result.timesteps:,} steps")

    paper = {k: v for k, v in PAPER_SETTINGS.items() if k != "n_constraints"}
    result = train("dqn", "HierHash-v0", {"bank": bank, **paper}, levels=[0, 1],
                   total_timesteps=args.paper_steps, num_envs=64, seed=args.seed,
                   n_constraints=list(PAPER_SETTINGS["n_constraints"]))
    _row("5 paper setting", _agent_ndcg(result.model, bank), result.wall_time,
         f"{result.timesteps:,} steps, 64 images per step")


if __name__ == "__main__":
    main()
