"""Quick start: train DRLHIH's hierarchical DQN on the built-in bank, encode, print mAP and NDCG.

    python examples/quickstart.py                       # the recipe's budget: a few minutes
    python examples/quickstart.py --total-timesteps 200 # smoke test
"""

from __future__ import annotations

import argparse
import dataclasses

import gymnasium as gym
import torch

import hashgym  # noqa: F401  (registers HierHash-v1, HierHash-v0 and CentralHash-v0)
from hashgym.agents.encode import encode
from hashgym.agents.train import train
from hashgym.metrics import evaluate
from hashgym.protocols import resolve_bank


@dataclasses.dataclass
class Args:
    total_timesteps: int = 0
    """environment steps, split equally between the two levels (0: the recipe's budget, six
    memory generations)"""
    bank: str = "cifar100-mini"
    """a preset name or a bank path"""
    num_envs: int = 256
    """images coded in parallel"""
    seed: int = 0
    """the run's seed"""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Args):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default),
                            default=field.default)
    return Args(**vars(parser.parse_args()))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    bank = resolve_bank(args.bank)
    env = gym.make("HierHash-v1", bank=bank)  # one image at a time: what an agent sees
    print("observation:", {k: v.shape for k, v in env.observation_space.items()},
          "action:", env.action_space)

    # DRLHIH: level 0 (super-classes), then level 1 (classes) refining the level-0 codes
    result = train("dqn", "HierHash-v1", {"bank": bank},
                   total_timesteps=args.total_timesteps or None, num_envs=args.num_envs,
                   seed=args.seed)
    print(f"trained {result.timesteps:,} steps in {result.wall_time:.1f} s")

    query, database = encode(result.model, bank, "query"), encode(result.model, bank, "database")
    q, db = bank.indices("query"), bank.indices("database")
    scores = evaluate(query, database, bank.labels[q, -1], bank.labels[db, -1],
                      metrics=["mAP@all"], relevance="label")
    scores |= evaluate(query, database, bank.labels[q], bank.labels[db],
                       metrics=["NDCG@20"], relevance="hierarchy")
    print(f"mAP@all (classes) {scores['mAP@all']:.4f}   NDCG@20 (hierarchy) "
          f"{scores['NDCG@20']:.4f}")


if __name__ == "__main__":
    main()
