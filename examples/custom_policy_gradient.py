"""Plug in your own algorithm: a bare policy-gradient loop against the raw Gymnasium vector API.

CentralHash-v0 rewards a code by its closeness to the image's hash center (SCIHCGRL); a linear
policy samples all bits in one step and follows REINFORCE with a mean-reward baseline.

    python examples/custom_policy_gradient.py --total-timesteps 200
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import torch

import hashgym  # noqa: F401  (registers the envs)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--total-timesteps", type=int, default=200_000)
parser.add_argument("--num-envs", type=int, default=512)
parser.add_argument("--n-bits", type=int, default=32)
args = parser.parse_args()
torch.set_num_threads(1)

# ---- the algorithm: 20 lines ---------------------------------------------------------------
env = gym.make_vec("CentralHash-v0", num_envs=args.num_envs, n_bits=args.n_bits)
obs, _ = env.reset(seed=0)
policy = torch.nn.Linear(env.single_observation_space["features"].shape[0], args.n_bits)
optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
for update in range(max(1, args.total_timesteps // args.num_envs)):
    logits = policy(torch.as_tensor(obs["features"]))
    bits = torch.distributions.Bernoulli(logits=logits)
    action = bits.sample()
    obs, reward, *_ = env.step(action.numpy().astype("uint8"))  # one step codes one image
    reward = torch.as_tensor(reward, dtype=torch.float32)
    advantage = reward - reward.mean()
    loss = -(advantage * bits.log_prob(action).sum(1)).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if update % 50 == 0:
        print(f"update {update:4d}  mean reward {reward.mean():+.3f}")
# ---------------------------------------------------------------------------------------------

codes = env.encode(lambda o: (policy(torch.as_tensor(o["features"])) > 0).numpy())
print(f"coded {len(codes):,} training images; final mean reward {reward.mean():+.3f}")
