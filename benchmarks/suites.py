"""Benchmark suites: which banks, code lengths, metrics and methods make up one table.

A :class:`BenchSuite` is the complete recipe of one of the papers' comparisons (``docs/methods.md``,
"The papers' comparisons"); :func:`hashgym.benchmarks.runner.run_benchmark` runs every
bank × method × code length × seed *cell* of it. The bank splits themselves are the bank presets
of :mod:`hashgym.protocols` (``cifar100-trees-people``, ``cifar100-csq``, ...), always drawn with
``split_seed`` (0), so every method and every seed sees the same queries and database; the
method seed varies only the methods' own randomness.

=================  ==========================================================================
preset             what it reproduces
=================  ==========================================================================
``drlhih``         DRLHIH's Table 1 setting: 12-bit codes (3 bits per step), ACG/DCG/NDCG@20 with
                   graded hierarchy relevance, on the ``trees`` + ``people`` subset of CIFAR-100
                   (the paper's) and on all of it (hashgym's); LSH, SH, ITQ, DCH, SHDH and the
                   DQN agent.
``scihcgrl``       SCIHCGRL's CIFAR protocol (1,000 query / 5,000 train) applied to CIFAR-100;
                   24/32/48 bits, mAP@all and precision within Hamming radius 2 with fine-label
                   relevance; CNNH, DSH, NINH, HashNet, CSQ and the recurrent REINFORCE agent.
``scihcgrl-e2e``   The same protocol at 32 bits, with the REINFORCE agent also trained end to
                   end on the images through the backbone the bank's features came from.
``agents``         One environment (``HierHash-v0``), five Stable-Baselines3 algorithms: which
                   RL algorithm suits hashing best.
``quick``          The bank built into the package, a few methods at two code lengths; a few
                   minutes on two CPU cores. The README's first command.
=================  ==========================================================================

Relevance: ``relevance="hierarchy"`` evaluates with every label level (graded relevance ``r`` =
the number of agreeing levels for ACG/DCG/NDCG; binary relevance = the same finest class);
``relevance="label"`` evaluates with the class ids of one level (``level``, default the finest).
See :mod:`hashgym.metrics`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hashgym.errors import BenchError
from hashgym.protocols import CLASS_SLICES
from hashgym.validation import is_integer

__all__ = [
    "AGENTS_GENERATION",
    "BENCH_SUITES",
    "BEST_BASELINE",
    "EXECUTORS",
    "SLICE_NAMES",
    "BenchError",
    "BenchSuite",
    "MethodSpec",
    "get_suite",
    "suite_names",
]


#: The class slices a suite's metric may name (``"mAP@1000 unseen@all"``).
SLICE_NAMES = tuple(name for name, _, _ in CLASS_SLICES)

#: In a suite's ``comparisons``: the baseline with the best mean in each column.
BEST_BASELINE = "best-baseline"

#: How :func:`hashgym.benchmarks.runner.run_benchmark` runs cells: one after another in this
#: process, in a pool of worker processes, or as Ray tasks (the ``ray`` extra).
EXECUTORS = ("serial", "process", "ray")


@dataclass(frozen=True)
class MethodSpec:
    """One row of a benchmark table: a method and its hyperparameters.

    :param key: the row's identifier (unique in a suite), used by ``--methods``, e.g.
        ``"itq"`` or ``"dqn-hier"``.
    :param kind: the adapter that runs it (a key of
        :data:`hashgym.benchmarks.methods.METHOD_KINDS`): ``"baseline"``, ``"dqn"``, ``"sb3"``
        or ``"reinforce"``.
    :param params: the adapter's parameters (JSON-serialisable): for a baseline its name and
        hyperparameters, for an agent the algorithm, environment and training budget.
    :param label: the name printed in tables and plots.
    """

    key: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def title(self) -> str:
        """The display name (``label``, else ``key``)."""
        return self.label or self.key

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for records and cell keys)."""
        return {"key": self.key, "kind": self.kind, "params": dict(self.params), "label": self.title}


@dataclass(frozen=True)
class BenchSuite:
    """A benchmark suite: banks × methods × code lengths × seeds, and how to score them.

    :param name: the preset name.
    :param description: one line for ``hashgym bench --list`` and the record.
    :param banks: bank preset names or paths (:func:`hashgym.protocols.resolve_bank`); each
        gets its own table.
    :param bits: code lengths, one group of table columns each.
    :param metrics: metric names of :func:`hashgym.metrics.evaluate`, in column order; a name
        followed by a class slice (``"mAP@1000 unseen@all"``) is scored on that slice of a bank
        split by the ``unseen`` protocol (:func:`hashgym.protocols.class_slices`).
    :param methods: the table rows.
    :param relevance: ``"hierarchy"`` (all label levels; graded relevance) or ``"label"`` (the
        class ids of ``level``).
    :param level: the label level for ``relevance="label"``; ``-1`` is the finest.
    :param seeds: how many seeds a run takes by default.
    :param first_seed: the first of them (``first_seed .. first_seed + seeds - 1``). The suites
        whose tables are final start at 100, seeds that no development run used (studies and
        variants train with 1000), so that ``hashgym bench --suite S`` measures again what the
        committed table reports.
    :param split_seed: seed of the bank presets' split (fixed across method seeds).
    :param ndcg_ks: cut-offs of the NDCG@k curve plotted per cell.
    :param comparisons: the table's headline comparisons, each ``(method, other)``: ``method``'s
        value minus ``other``'s, paired by seed, with a 95 % confidence interval
        (:func:`hashgym.benchmarks.tables.paired_differences`), for every bank, length and
        metric. ``other`` is a method key, or :data:`BEST_BASELINE` for the baseline with the
        best mean in that column (the strongest opponent, however the columns fall).
    :param settings: where the methods' settings were chosen (the preset and the study or
        note), recorded in ``record.json`` so that a reader can tell a table measured blind from
        one whose settings saw its queries.
    """

    name: str
    description: str
    banks: tuple[str, ...]
    bits: tuple[int, ...]
    metrics: tuple[str, ...]
    methods: tuple[MethodSpec, ...]
    relevance: Literal["hierarchy", "label"] = "hierarchy"
    level: int = -1
    seeds: int = 3
    first_seed: int = 0
    split_seed: int = 0
    ndcg_ks: tuple[int, ...] = (1, 5, 10, 20, 50, 100, 200)
    comparisons: tuple[tuple[str, str], ...] = ()
    settings: str = ""

    def __post_init__(self) -> None:
        if not self.banks:
            raise BenchError(f"suite {self.name!r} has no bank")
        if not self.bits or any(
            not is_integer(b) or b < 1 for b in self.bits
        ):
            raise BenchError(f"suite {self.name!r}: bits must be positive integers, got {self.bits!r}")
        if not self.metrics:
            raise BenchError(f"suite {self.name!r} has no metric")
        if not self.methods:
            raise BenchError(f"suite {self.name!r} has no method")
        keys = [m.key for m in self.methods]
        if len(set(keys)) != len(keys):
            raise BenchError(f"suite {self.name!r} has duplicate method keys: {keys}")
        if self.relevance not in ("hierarchy", "label"):
            raise BenchError(
                f"suite {self.name!r}: relevance must be 'hierarchy' or 'label', "
                f"got {self.relevance!r}"
            )
        if not is_integer(self.seeds) or self.seeds < 1:
            raise BenchError(f"suite {self.name!r}: seeds must be a positive integer, got {self.seeds!r}")
        if not is_integer(self.first_seed) or self.first_seed < 0:
            raise BenchError(f"suite {self.name!r}: first_seed must be a non-negative integer, "
                             f"got {self.first_seed!r}")
        for metric in self.metrics:
            _, _, part = metric.partition(" ")
            if part and part not in SLICE_NAMES:
                raise BenchError(f"suite {self.name!r}: metric {metric!r} names no class slice; "
                                 f"known: {', '.join(SLICE_NAMES)}")
        for pair in self.comparisons:
            for key in pair:
                if key != BEST_BASELINE and key not in keys:
                    raise BenchError(f"suite {self.name!r}: comparison {pair!r} names no method "
                                     f"{key!r}; its methods: {', '.join(keys)}")

    @property
    def seed_list(self) -> list[int]:
        """The seeds a run takes when it is given none."""
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def method(self, key: str) -> MethodSpec:
        """The method with this key.

        :raises BenchError: naming the suite's methods, for an unknown key.
        """
        for spec in self.methods:
            if spec.key == key:
                return spec
        raise BenchError(
            f"suite {self.name!r} has no method {key!r}; its methods: "
            f"{', '.join(m.key for m in self.methods)}"
        )

    def select(
        self,
        *,
        methods: Sequence[str] | None = None,
        bits: Sequence[int] | None = None,
        banks: Sequence[str] | None = None,
        seeds: int | None = None,
    ) -> BenchSuite:
        """A copy restricted to some methods / bits, or with other banks / seed count.

        :param methods: method keys to keep, in the suite's order.
        :param bits: code lengths to run instead (any positive lengths).
        :param banks: banks to run instead (preset names or paths).
        :param seeds: number of seeds.
        :raises BenchError: for an unknown method key or bad values.
        """
        changes: dict[str, Any] = {}
        if methods is not None:
            wanted = list(dict.fromkeys(methods))
            for key in wanted:
                self.method(key)
            changes["methods"] = tuple(m for m in self.methods if m.key in wanted)
            changes["comparisons"] = tuple(
                pair for pair in self.comparisons
                if all(k == BEST_BASELINE or k in wanted for k in pair))
        if bits is not None:
            changes["bits"] = tuple(bits)
        if banks is not None:
            changes["banks"] = tuple(banks)
        if seeds is not None:
            changes["seeds"] = seeds
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for the run record)."""
        out = dataclasses.asdict(self)
        out["methods"] = [m.to_dict() for m in self.methods]
        return out


# ----------------------------------------------------------------------------------------------
# the presets

def _baseline(name: str, label: str, **params: Any) -> MethodSpec:
    return MethodSpec(name, "baseline", {"name": name, **params}, label)


# The env of an agent row. HierHash-v1 (the margin a quarter of the code) is the env hashgym's
# agents train by default; the rows whose committed records were measured on HierHash-v0 keep
# it (the drlhih and agents suites at 12 bits, where v1 is the same env, and unseen at 32
# bits), so their cells keep their keys and their records stay reproducible.
_V0, _V1 = "HierHash-v0", "HierHash-v1"


def _agent(key: str, label: str, algo: str, env_id: str = _V0, **params: Any) -> MethodSpec:
    return MethodSpec(key, "agent", {"algo": algo, "env_id": env_id, **params}, label)


# DRLHIH §4.1: 12 bits, 3 bits per step (HierHash-v0's default at 12 bits). The DQN rows train
# hashgym's recipe: HierHash-v0's defaults (the expected class-mean reward against a memory that
# moves once per generation, from random class codes) and the budget of agents/recipe.py (four
# memory generations; each level but the last gets one). The level-only variants get the same
# four generations. Each row also records NDCG@20 against environment steps (the learning-curve
# plots). The lengths suite's row is the same on HierHash-v1.
_LEARNING_CURVE = {"metric": "NDCG@20", "relevance": "hierarchy", "points": 12}


def _dqn_row(key: str, label: str, levels: list[int], env_id: str = _V0) -> MethodSpec:
    return _agent(key, label, "dqn", env_id, levels=levels, learning_curve=_LEARNING_CURVE)


_DQN_HIER = _dqn_row("dqn-hier", "DQN (hierarchical)", [0, 1])


def _dqn_variants() -> tuple[MethodSpec, ...]:
    """DRLHIH's three DQN rows: level 0 only, level 1 only, and the level curriculum."""
    return (_dqn_row("dqn-l0", "DQN (level 0 only)", [0]),
            _dqn_row("dqn-l1", "DQN (level 1 only)", [1]),
            _DQN_HIER)


# Study winners on the development bank (benchmarks/results/studies/, notes/blind-tuning.md):
# DCH's on cifar100-dev at 12 bits (NDCG@20, graded relevance), CSQ's on cifar100-dev-csq at 32
# bits (mAP@all, fine labels). SHDH's, HashNet's and REINFORCE's studies kept their defaults.
_DCH_STUDIED = {"gamma": 21.900472830589003, "lam": 0.01377730148116596,
                "lr": 0.0006085667994767268, "weight_decay": 5.358288335941572e-07}
_CSQ_STUDIED = {"lam": 4.3350892469155154e-05, "lr": 0.000921261246947136,
                "weight_decay": 0.00030895707207225144}


# CSQ and recurrent REINFORCE at their studies' settings, their centres at the widest distance
# 100 classes allow ("auto": the default K // 4 + 1 from 24 bits on, the same centres; 4 at 16
# bits and 2 at 12, where the greedy draw finds no set at the default). REINFORCE's 1,200
# updates of 256 images: twice the recipe's 600, a little better at every length for twice the
# training time (benchmarks/results/notes/reinforce-recipe.md).
_CSQ_AUTO = _baseline("csq", "CSQ", **_CSQ_STUDIED, min_distance="auto")
_REINFORCE_AUTO = _agent("reinforce", "Recurrent REINFORCE", "reinforce", env_id="CentralHash-v0",
                         total_timesteps=307_200, num_envs=256,
                         env_kwargs={"min_distance": "auto"})

DRLHIH = BenchSuite(
    name="drlhih",
    description="DRLHIH Table 1's setting on CIFAR-100 trees+people, and on all of CIFAR-100: "
    "12 bits (3 per step), ACG/DCG/NDCG@20 with graded hierarchy relevance",
    banks=("cifar100-trees-people", "cifar100"),
    bits=(12,),
    seeds=5,
    first_seed=100,
    metrics=("ACG@20", "DCG@20", "NDCG@20"),
    relevance="hierarchy",
    comparisons=(("dqn-hier", BEST_BASELINE),),
    settings="DCH, SHDH and the DQN from their studies on cifar100-dev (12 bits, NDCG@20, 8 "
    "trials each, seed 1000; SHDH's default and the DQN's recipe won; "
    "benchmarks/results/studies/drlhih/). The recipe's other choices (its env defaults, budget "
    "and network) were made before the development bank existed, on this suite's cifar100 "
    "queries (notes/hierhash-expected.md); its study searched its learning rate, target "
    "update interval and final exploration only",
    methods=(
        _baseline("lsh", "LSH"),
        _baseline("sh", "SH"),
        _baseline("itq", "ITQ"),
        _baseline("dch", "DCH", **_DCH_STUDIED),
        _baseline("shdh", "SHDH"),
        *_dqn_variants(),
    ),
)

SCIHCGRL = BenchSuite(
    name="scihcgrl",
    description="SCIHCGRL's CIFAR protocol on CIFAR-100 (1,000 query / 5,000 train / the rest "
    "as database; queries from the bank's query split only): 16/24/32/48/64 bits, mAP@all and "
    "precision@r<=2, fine-label relevance",
    banks=("cifar100-csq",),
    bits=(16, 24, 32, 48, 64),
    seeds=5,
    first_seed=100,
    metrics=("mAP@all", "P@r<=2"),
    relevance="label",
    level=-1,
    comparisons=(("reinforce", "csq"), ("reinforce", BEST_BASELINE)),
    settings="equal tuning on cifar100-dev-csq (the development twin), 32 bits, seed 1000: "
    "8 trials per method, the 0.5.0 setting one of them (benchmarks/results/studies/scihcgrl/, "
    "notes/blind-tuning.md)",
    # each baseline's parameters: the best of its study (HashNet's: its 0.5.0 defaults won)
    methods=(
        _baseline("cnnh",
                  "CNNH", lr=0.000921261246947136,
                  max_sweeps=6, weight_decay=0.00030895707207225144),
        _baseline("dsh",
                  "DSH", alpha=0.030544925285691523,
                  lr=0.004824823697128709, weight_decay=6.734872487225821e-07),
        _baseline("ninh",
                  "NINH", lr=0.002028519425405633,
                  margin=3.813560741308842, weight_decay=2.8842159386248483e-07),
        _baseline("hashnet", "HashNet"),
        _CSQ_AUTO,
        _REINFORCE_AUTO,
    ),
)

# SCIHCGRL's end-to-end setting (§2.B, eq. (10): the CNN's parameters follow the reward's
# gradient): the same recurrent REINFORCE agent on the frozen features of a backbone, and on the
# images through that backbone, started from its weights and trained by the agent's loss. It
# runs on a bank hashgym features made from cifar100.npz with the csq split and --save-weights
# (docs/agents.md, "End to end", lists the three commands); on a bank without them the end-to-end
# row stops with an error that says so.
SCIHCGRL_E2E = BenchSuite(
    name="scihcgrl-e2e",
    description="SCIHCGRL end to end on cifar100-csq, 32 bits: the recurrent REINFORCE agent "
    "on a backbone's frozen features and through the backbone on the images, from the "
    "weights hashgym features saved; mAP@all and precision@r<=2, fine labels",
    banks=("cifar100-csq",),
    bits=(32,),
    first_seed=100,
    metrics=("mAP@all", "P@r<=2"),
    relevance="label",
    level=-1,
    # the question of SCIHCGRL §2.B: does training the backbone by the agent's loss beat the
    # same agent, and the best head, on its frozen features?
    comparisons=(("reinforce-e2e", "reinforce"), ("reinforce-e2e", "csq")),
    settings="nothing searched for this table: CSQ at the best setting of its study and "
    "REINFORCE at its recipe, which won its study (both on cifar100-dev-csq, 32 bits, seed 1000; "
    "notes/blind-tuning.md); the end-to-end row adds the backbone, started from the bank's "
    "saved weights and trained at the agent's learning rate. The bank's backbone trained on its "
    "5,000 training images only, so its queries are unseen (notes/end-to-end.md)",
    methods=(
        _baseline("csq", "CSQ (frozen features)", **_CSQ_STUDIED),
        _agent("reinforce", "Recurrent REINFORCE (frozen features)", "reinforce",
               env_id="CentralHash-v0", total_timesteps=307_200, num_envs=256),
        _agent("reinforce-e2e", "Recurrent REINFORCE (end to end)", "reinforce",
               env_id="CentralHash-v0", total_timesteps=307_200, num_envs=256,
               env_kwargs={"observation": "image"},
               algo_kwargs={"policy_kwargs": {"backbone": "resnet18",
                                              "backbone_weights": "bank"}}),
    ),
)

# Every algorithm gets HierHash-v0's defaults, 256 parallel images and the recipe's four memory
# generations, at 500k steps each: 2M steps in all, a sixth of the drlhih suite's budget, so that
# three seeds of the on-policy algorithms fit on two CPU cores (their registry defaults take a
# gradient step every 26 environment steps where DQN takes one every 256; throughputs in
# benchmarks/results/notes/agents-suite.md).
AGENTS_GENERATION = 500_000
_AGENTS_ENV = {"bits_per_step": 3, "memory_generation": AGENTS_GENERATION}
# the table's algorithms (registry name, row label); the first, DQN, is DRLHIH's and the one the
# others are compared with
_AGENTS_ALGOS = (("dqn", "DQN"), ("qrdqn", "QR-DQN"), ("ppo", "PPO"), ("a2c", "A2C"),
                 ("recurrentppo", "RecurrentPPO"))

AGENTS = BenchSuite(
    name="agents",
    description="HierHash-v0 (12 bits, 3 per step) on CIFAR-100 trained with DQN, QR-DQN, PPO, "
    "A2C and RecurrentPPO for 2M steps (four memory generations of 500k): which RL algorithm "
    "suits hashing best",
    banks=("cifar100",),
    bits=(12,),
    first_seed=100,
    metrics=("mAP@all", "P@r<=2", "NDCG@20"),
    relevance="hierarchy",
    comparisons=tuple((algo, _AGENTS_ALGOS[0][0]) for algo, _ in _AGENTS_ALGOS[1:]),
    settings="every algorithm at the agent registry's defaults and HierHash-v0's, the same 2M "
    "steps each; nothing searched for this table. The env's defaults (memory_init, level_split, "
    "sibling_negatives, rho) were chosen on the drlhih suite's cifar100 queries before the "
    "development bank existed (notes/hierhash-expected.md), RecurrentPPO's one shared LSTM on "
    "cifar100-holdout, images the shared backbone trained on (notes/agents-suite.md)",
    methods=(
        _baseline("lsh", "LSH (reference)"),
        _baseline("itq", "ITQ (reference)"),
        *(
            _agent(algo, label, algo, levels=[0, 1], env_kwargs=_AGENTS_ENV,
                   learning_curve=_LEARNING_CURVE)
            for algo, label in _AGENTS_ALGOS
        ),
    ),
)

QUICK = BenchSuite(
    name="quick",
    description="the built-in cifar100-mini bank: LSH, ITQ, CSQ, the hierarchical DQN and "
    "recurrent REINFORCE at 24 and 48 bits, one seed, small budgets; a few minutes on two CPU "
    "cores",
    banks=("cifar100-mini",),
    bits=(24, 48),
    metrics=("mAP@all", "P@r<=2", "NDCG@20"),
    relevance="hierarchy",
    seeds=1,
    first_seed=100,
    methods=(
        _baseline("lsh", "LSH"),
        _baseline("itq", "ITQ"),
        # its study's setting (cifar100-dev-csq, 32 bits) and its 30 epochs: 20 and 10 lost
        # more than 0.01 mAP@all on cifar100-dev-mini (benchmarks/results/variants/quick/csq/)
        _baseline("csq", "CSQ", **_CSQ_STUDIED),
        # the recipe, as `hashgym train --algo dqn` runs it (four memory generations)
        _agent("dqn-hier", "DQN (hierarchical)", "dqn", _V1, levels=[0, 1]),
        # 600 updates of 256 images: within 0.01 mAP@all of 1,200 on cifar100-dev-mini at 24
        # and 48 bits, in half the time (benchmarks/results/variants/quick/reinforce/)
        _agent("reinforce", "Recurrent REINFORCE", "reinforce", env_id="CentralHash-v0",
               total_timesteps=153_600, num_envs=256),
    ),
    settings="CSQ and REINFORCE at their studies' settings (cifar100-dev-csq, 32 bits; "
    "REINFORCE's default won), the DQN at its recipe, which its study on cifar100-dev kept "
    "(12 bits; benchmarks/results/studies/); the budgets (CSQ's 30 epochs, REINFORCE's 600 "
    "updates) chosen on this bank's development twin cifar100-dev-mini: the smallest of three "
    "within 0.01 mAP@all of the largest at 24 and 48 bits (benchmarks/results/variants/quick/)",
)

# Retrieval of classes never trained on, in the protocol of the DSH_Analysis re-evaluation of
# deep hashing (25 of CIFAR-100's classes unseen, mAP@1000), plus mAP@all and NDCG@20. 32 bits:
# the DQN codes 8 bits per step there (4 steps per code, HierHash-v0's default at 32 bits),
# chosen over 4 per step on the development twin cifar100-dev-unseen, where 4 per step collapsed
# to 2 distinct codes (benchmarks/results/variants/unseen/dqn-hier/).
UNSEEN = BenchSuite(
    name="unseen",
    description="classes never trained on: cifar100-unseen (25 of the 100 fine classes left out "
    "of training), 32 bits; mAP@1000, mAP@all and NDCG@20 as seen@seen, unseen@unseen and "
    "unseen@all, fine-label relevance",
    banks=("cifar100-unseen",),
    bits=(32,),
    first_seed=100,
    metrics=tuple(f"{metric} {part}" for part in SLICE_NAMES
                  for metric in ("mAP@1000", "mAP@all", "NDCG@20")),
    relevance="label",
    level=-1,
    methods=(
        _baseline("itq", "ITQ"),
        _baseline("dch", "DCH", **_DCH_STUDIED),
        _baseline("csq", "CSQ", **_CSQ_STUDIED),
        _baseline("shdh", "SHDH"),
        _agent("dqn-hier", "DQN (hierarchical)", "dqn", levels=[0, 1],
               env_kwargs={"bits_per_step": 8}),
        _agent("reinforce", "Recurrent REINFORCE", "reinforce", env_id="CentralHash-v0",
               total_timesteps=307_200, num_envs=256),
    ),
    comparisons=(("dqn-hier", BEST_BASELINE), ("reinforce", "csq")),
    settings="each method's setting from its study on a development twin, none chosen on this "
    "bank's queries or its unseen classes: DCH and SHDH on cifar100-dev (12 bits, NDCG@20; "
    "SHDH's default won), CSQ and REINFORCE on cifar100-dev-csq (32 bits, mAP@all; "
    "REINFORCE's default won); the DQN is hashgym 0.5.0's recipe at 8 bits per step, chosen "
    "over 4 on cifar100-dev-unseen (seed 1000; 4 collapsed there to 2 distinct codes), its "
    "recipe's other settings not re-chosen (benchmarks/results/studies/, "
    "benchmarks/results/variants/unseen/, notes/blind-tuning.md, notes/unseen-suite.md)",
)

# Every code length a hashing user picks, on all of CIFAR-100 with the `drlhih` suite's graded
# relevance, one split for every method. The DQN codes HierHash's default bits per step at
# each length (3, 6, 8, 8, 8: 4, 4, 4, 6 and 8 steps per code at 12-64 bits), for the recipe's
# four memory generations of the env's length (so a cell's steps grow with the steps per code).
# CSQ's centres and REINFORCE's (CentralHash-v0) take the widest distance the 100 classes allow
# ("auto": the default K // 4 + 1 from 24 bits on, 2 at 12 bits, where the greedy draw finds no
# set at 4). ITQ, DCH and SHDH at 12 bits are the drlhih suite's cifar100 cells (the same keys):
# copying a drlhih run's cells/ into a lengths run's saves their training. The DQN trains on
# HierHash-v1, whose margin is a quarter of the code at every length (v0's collapsed at 48 and
# 64 bits on cifar100-dev, notes/lengths.md); at 12 bits it is drlhih's env under another id,
# so those cells train again and must give drlhih's codes.
LENGTHS = BenchSuite(
    name="lengths",
    description="all of CIFAR-100 at 12, 24, 32, 48 and 64 bits: ITQ, DCH, SHDH, CSQ, the "
    "hierarchical DQN and recurrent REINFORCE; NDCG@20 with graded hierarchy relevance, mAP@all "
    "and precision@r<=2 with fine labels; three seeds",
    banks=("cifar100",),
    bits=(12, 24, 32, 48, 64),
    metrics=("NDCG@20", "mAP@all", "P@r<=2"),
    relevance="hierarchy",
    level=-1,
    seeds=3,
    first_seed=100,
    comparisons=(("dqn-hier", BEST_BASELINE), ("reinforce", "csq")),
    settings="the baselines' and REINFORCE's study winners, chosen at one length each (DCH, "
    "SHDH: cifar100-dev, 12 bits, NDCG@20; CSQ, REINFORCE: cifar100-dev-csq, 32 bits, "
    "mAP@all); the DQN at HierHash-v1's defaults: its bits per step, and the margin a quarter "
    "of the code, chosen on cifar100-dev at 24-64 bits (notes/lengths.md)",
    methods=(
        _baseline("itq", "ITQ"),
        _baseline("dch", "DCH", **_DCH_STUDIED),
        _baseline("shdh", "SHDH"),
        _CSQ_AUTO,
        _dqn_row("dqn-hier", "DQN (hierarchical)", [0, 1], _V1),
        _REINFORCE_AUTO,
    ),
)

BENCH_SUITES: dict[str, BenchSuite] = {
    p.name: p for p in (DRLHIH, SCIHCGRL, SCIHCGRL_E2E, AGENTS, QUICK, UNSEEN, LENGTHS)}
"""Every benchmark suite preset by name."""


def suite_names() -> list[str]:
    """The names :func:`get_suite` accepts."""
    return list(BENCH_SUITES)


def get_suite(suite: str | BenchSuite) -> BenchSuite:
    """A suite preset by name (or the suite itself).

    :raises BenchError: for an unknown name, listing the known ones.
    """
    if isinstance(suite, BenchSuite):
        return suite
    if suite not in BENCH_SUITES:
        raise BenchError(
            f"unknown benchmark suite {suite!r}; known: {', '.join(BENCH_SUITES)}"
        )
    return BENCH_SUITES[suite]
