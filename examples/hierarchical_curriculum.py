"""DRLHIH's level curriculum, step by step with SB3's DQN and the env's public API.

Level 0 learns super-class constraints; the agent then codes every training image, those codes
become ``prev_codes``, the env moves to level 1 (class constraints plus the refinement reward of
eqs. (4)-(5)), and the same network keeps learning. The env moves its code memory by itself,
once per memory generation, so no callback is needed.
(``hashgym.agents.train.train("dqn", "HierHash-v1", levels=(0, 1))`` does all of this, with the
recipe's budget and checkpoints.)

    python examples/hierarchical_curriculum.py --total-timesteps 200
"""

from __future__ import annotations

import argparse

import torch
from stable_baselines3 import DQN

from hashgym.agents.dqn import DQN_DEFAULTS
from hashgym.agents.encode import policy_act
from hashgym.envs.sb3 import make_sb3_vec_env
from hashgym.metrics import evaluate
from hashgym.protocols import resolve_bank

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--total-timesteps", type=int, default=420_000,
                    help="steps per level (420,000: one memory generation on cifar100-mini)")
parser.add_argument("--bank", default="cifar100-mini")
parser.add_argument("--num-envs", type=int, default=256)
args = parser.parse_args()
torch.set_num_threads(1)

bank = resolve_bank(args.bank)
q, db = bank.indices("query"), bank.indices("database")
# HierHash-v1's defaults: eq. (1) averaged over the negative's class, on distances to the class
# means of a code memory that starts as one random
# code per class and takes the episodes' codes once per generation (15 codings of every training image),
# split by one bit per class at a level change; the paper's
# setting is hashgym.envs.hierhash.PAPER_SETTINGS
venv = make_sb3_vec_env("HierHash-v1", num_envs=args.num_envs, bank=bank, info_keys=())
native = venv.unwrapped.vector_env  # the hashgym vector env under SB3's wrappers
hyper = {**DQN_DEFAULTS, "learning_starts": min(1000, args.total_timesteps // 2)}
model = DQN("MultiInputPolicy", venv, seed=0, **hyper)

for level in range(bank.n_levels):
    if level > 0:
        prev_codes = native.encode(policy_act(model))  # codes of every training image
        native.set_level(level, prev_codes)            # refine them at the next level
        model.replay_buffer.reset()                    # old rewards belong to the old level
        model._last_obs = None                         # start fresh episodes at this level
    model.learn(args.total_timesteps, reset_num_timesteps=False)
    codes_q = native.encode(policy_act(model), indices=q)
    codes_db = native.encode(policy_act(model), indices=db)
    ndcg = evaluate(codes_q, codes_db, bank.labels[q], bank.labels[db], metrics=["NDCG@20"],
                    relevance="hierarchy")["NDCG@20"]
    print(f"after level {level}: NDCG@20 = {ndcg:.4f} ({model.num_timesteps:,} steps, "
          f"{native.generations} memory generation(s) at this level)")
