"""Baselines: the common estimator checks (parametrised over every registered baseline), the
label/similarity helper, method-specific references, and error paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashgym.bank import FeatureBank
from hashgym.benchmarks.baselines import (
    BASELINES,
    ITQ,
    SUPERVISED,
    BaseHasher,
    BaselineError,
    SpectralHashing,
    as_label_set,
    cnnh_target_codes,
    load_baseline,
    make_baseline,
    similarity,
)
from hashgym.benchmarks.baselines.deep import balanced_pair_weights, pair_mask
from hashgym.benchmarks.baselines.labels import LabelError, graded_similarity
from hashgym.centers import CenterError, hash_centers
from hashgym.codes import hamming
from hashgym.synthetic import make_hierarchical_bank, make_multilabel_bank

ALL = list(BASELINES)
TINY = {"epochs": 3, "hidden": (16,), "batch_size": 16}


def build(name: str, n_bits: int = 8, **params: object) -> BaseHasher:
    """A baseline with tiny training settings for the deep ones."""
    if BASELINES[name].supervised:
        params = {**TINY, **params}
    return make_baseline(name, n_bits, **params)


@pytest.fixture(scope="module")
def small_bank() -> FeatureBank:
    """2 coarse x 3 fine classes, 10 images each (8 database + 2 query), 16-d."""
    return make_hierarchical_bank(branching=(2, 3), n_per_class=10, dim=16, seed=0)


# ------------------------------------------------------------------ common estimator checks
@pytest.mark.parametrize("name", ALL)
def test_fit_encode_shape_dtype(name: str, small_bank: FeatureBank) -> None:
    model = build(name, 8, seed=0)
    assert model.fit(small_bank) is model
    codes = model.encode(small_bank.view("query").features)
    assert codes.shape == (len(small_bank.view("query")), 8)
    assert codes.dtype == np.uint8
    assert set(np.unique(codes)) <= {0, 1}
    assert model.n_features_in_ == small_bank.dim


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_codes(name: str, small_bank: FeatureBank) -> None:
    x = small_bank.features
    first = build(name, 8, seed=3).fit(small_bank)
    codes = first.encode(x)
    np.testing.assert_array_equal(build(name, 8, seed=3).fit(small_bank).encode(x), codes)
    np.testing.assert_array_equal(first.fit(small_bank).encode(x), codes)  # refit


@pytest.mark.parametrize("name", [n for n in ALL if n != "sh"])  # SH is deterministic
def test_seed_matters(name: str, small_bank: FeatureBank) -> None:
    x = small_bank.features
    a = build(name, 16, seed=0).fit(small_bank).encode(x)
    b = build(name, 16, seed=1).fit(small_bank).encode(x)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", ALL)
def test_save_load_identical_codes(name: str, small_bank: FeatureBank, tmp_path) -> None:
    model = build(name, 8, seed=0).fit(small_bank)
    path = model.save(tmp_path / f"{name}.model")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    x = small_bank.features
    for loaded in (load_baseline(path), type(model).load(path)):
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.encode(x), model.encode(x))


@pytest.mark.parametrize("name", [n for n in ALL if n != "shdh"])
def test_hierarchy_uses_finest_level(name: str, small_bank: FeatureBank) -> None:
    """Single-label methods fitted on a bank's hierarchy train on its finest level only."""
    train = small_bank.view("train")
    x = small_bank.features
    from_bank = build(name, 8).fit(small_bank).encode(x)
    from_finest = build(name, 8).fit(train.features, train.labels[:, -1]).encode(x)
    np.testing.assert_array_equal(from_bank, from_finest)


def test_shdh_uses_every_level(small_bank: FeatureBank) -> None:
    train = small_bank.view("train")
    x = small_bank.features
    hier = build("shdh", 16).fit(train.features, train.labels, label_kind="hierarchy")
    fine = build("shdh", 16).fit(train.features, train.labels[:, -1])
    assert hier.level_weights_.tolist() == pytest.approx([0.5, 0.5])
    assert not np.array_equal(hier.encode(x), fine.encode(x))


@pytest.mark.parametrize("name", SUPERVISED)
def test_multilabel_fit(name: str) -> None:
    bank = make_multilabel_bank(n=80, n_concepts=5, dim=12, seed=0)
    codes = build(name, 8).fit(bank).encode(bank.features)
    assert codes.shape == (80, 8) and codes.dtype == np.uint8


def test_fit_on_other_split(small_bank: FeatureBank) -> None:
    """``split`` picks the rows: fitting on the query split equals fitting on its arrays."""
    query = small_bank.view("query")
    a = make_baseline("itq", 4).fit(small_bank, split="query")
    b = make_baseline("itq", 4).fit(query.features)
    np.testing.assert_array_equal(a.encode(small_bank.features), b.encode(small_bank.features))


@pytest.mark.slow
def test_supervised_beats_lsh() -> None:
    """On a well-separated bank every supervised head ranks far better than LSH."""
    from hashgym.metrics import mean_average_precision

    bank = make_hierarchical_bank(branching=(4, 3), n_per_class=20, dim=32, noise=2.0, seed=0)
    q, d = bank.view("query"), bank.view("database")

    def score(model: BaseHasher) -> float:
        model.fit(bank)
        return mean_average_precision(model.encode(q.features), model.encode(d.features),
                                      q.labels[:, -1], d.labels[:, -1])

    lsh = score(make_baseline("lsh", 16, seed=0))
    assert lsh < 0.65
    for name in SUPERVISED:
        m = score(make_baseline(name, 16, seed=0, epochs=40, hidden=(64,), batch_size=32, lr=3e-3))
        assert m > lsh + 0.15, f"{name}: mAP {m:.3f} vs LSH {lsh:.3f}"


def test_deep_fit_leaves_global_state(small_bank: FeatureBank) -> None:
    threads = torch.get_num_threads()
    torch_state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    build("csq", 8, num_threads=1, progress=True).fit(small_bank)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)


def test_params_roundtrip() -> None:
    model = make_baseline("dsh", 12, alpha=0.5, epochs=7, seed=4)
    params = model.get_params()
    assert params["n_bits"] == 12 and params["alpha"] == 0.5 and params["epochs"] == 7
    assert params["seed"] == 4 and params["margin"] is None
    assert type(model)(**params).get_params() == params
    assert "alpha=0.5" in repr(model)
    assert model.set_params(epochs=2).epochs == 2


# ------------------------------------------------------------------ labels and similarity
def test_similarity_hand_computed() -> None:
    one_hot = as_label_set(np.array([0, 1, 0])).finest.astype(np.float32)
    expected = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(similarity(one_hot, one_hot), expected)
    t = torch.as_tensor(one_hot)
    np.testing.assert_array_equal(similarity(t, t).numpy(), expected)
    multi = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    np.testing.assert_array_equal(
        similarity(multi, multi), np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=bool)
    )


def test_label_set_kinds() -> None:
    hier = as_label_set(np.array([[0, 1], [1, 2], [0, 0]]), "hierarchy")
    assert hier.n_levels == 2 and [i.shape for i in hier.indicators] == [(3, 2), (3, 3)]
    np.testing.assert_array_equal(hier.finest.argmax(1), [1, 2, 0])
    multi = as_label_set(np.array([[1, 0], [1, 1]]), "multi_hot")
    assert multi.kind == "multi_hot" and multi.n_classes == 2
    assert as_label_set(np.array([2, 0]), n_classes=(5,)).n_classes == 5
    with pytest.raises(LabelError, match="ambiguous"):
        as_label_set(np.zeros((3, 2), dtype=int))
    with pytest.raises(LabelError, match="must give each image a concept"):
        as_label_set(np.array([[1, 0], [0, 0]]), "multi_hot")
    with pytest.raises(LabelError, match="out of range"):
        as_label_set(np.array([3]), n_classes=(2,))
    with pytest.raises(LabelError, match="non-negative"):
        as_label_set(np.array([0, -1]))
    with pytest.raises(LabelError, match="unknown label_kind"):
        as_label_set(np.array([0, 1]), "graded")  # type: ignore[arg-type]


def test_graded_similarity_hand_computed() -> None:
    """Levels agreeing: images 0 and 1 share the leaf, 2 is their sibling, 3 is unrelated."""
    levels = as_label_set(np.array([[0, 0], [0, 0], [0, 1], [1, 2]]), "hierarchy").indicators
    levels = [ind.astype(np.float32) for ind in levels]
    expected = np.array([[2, 2, 1, 0], [2, 2, 1, 0], [1, 1, 2, 0], [0, 0, 0, 2]])
    np.testing.assert_array_equal(graded_similarity(levels, levels), expected)
    tensors = [torch.as_tensor(ind) for ind in levels]
    np.testing.assert_array_equal(graded_similarity(tensors, tensors).numpy(), expected)
    np.testing.assert_array_equal(graded_similarity(levels[1:], levels[1:]),
                                  similarity(levels[1], levels[1]).astype(int))
    with pytest.raises(LabelError, match="same positive number of levels on both sides, got 2 "
                                         "and 1"):
        graded_similarity(levels, levels[:1])


def test_balanced_pair_weights_binary_hand_computed() -> None:
    """Labels [0, 0, 1, 2]: 2 similar and 10 dissimilar off-diagonal pairs, |S| = 12. HashNet
    eq. (7) gives |S|/|S1| = 6 and |S|/|S0| = 1.2; halved (mean 1): 3 and 0.6."""
    labels = np.array([0, 0, 1, 2])
    s = torch.as_tensor((labels[:, None] == labels[None, :]).astype(np.float32))
    w = balanced_pair_weights(s, pair_mask(4))
    expected = np.full((4, 4), 0.6)
    expected[0, 1] = expected[1, 0] = 3.0
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
    assert w.dtype == torch.float32


def test_balanced_pair_weights_graded_hand_computed() -> None:
    """Grades of the batch above: 2 pairs of grade 2, 4 of grade 1, 6 of grade 0; each grade
    gets |S| / 3 = 4 in total, i.e. weights 2, 1 and 2/3."""
    grades = torch.tensor([[2, 2, 1, 0], [2, 2, 1, 0], [1, 1, 2, 0], [0, 0, 0, 2]])
    w = balanced_pair_weights(grades, pair_mask(4)).numpy()
    expected = np.array([[0, 2, 1, 2 / 3], [2, 0, 1, 2 / 3], [1, 1, 0, 2 / 3],
                         [2 / 3, 2 / 3, 2 / 3, 0]])
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    one_grade = balanced_pair_weights(torch.zeros(3, 3), pair_mask(3))  # no similar pair
    np.testing.assert_array_equal(one_grade.numpy(), 1.0 - np.eye(3))
    empty = balanced_pair_weights(grades, torch.zeros(4, 4, dtype=torch.bool))
    assert not empty.any()


def test_shdh_loss_brute_force() -> None:
    """SHDH's loss equals a double loop over the pairs of a random batch (graded target, grade
    weights, quantization term)."""
    rng = np.random.default_rng(0)
    hier = rng.integers(0, 2, size=(7, 1))
    hier = np.concatenate([hier, hier * 2 + rng.integers(0, 2, size=(7, 1))], axis=1)
    levels = as_label_set(hier, "hierarchy", n_classes=(2, 4)).indicators
    model = make_baseline("shdh", 5, level_weights=(1.0, 3.0), lam=0.3, scale=0.7)
    model.level_weights_ = model.resolve_level_weights(2)
    u = torch.as_tensor(rng.uniform(-1, 1, size=(7, 5)), dtype=torch.float32)
    batch = {f"y{l}": torch.as_tensor(ind, dtype=torch.float32) for l, ind in enumerate(levels)}
    grade = (hier[:, None, :] == hier[None, :, :]).sum(axis=2)
    pairs = [(i, j) for i in range(7) for j in range(7) if i != j]
    counts = {g: sum(grade[i, j] == g for i, j in pairs) for g in {grade[i, j] for i, j in pairs}}
    total = 0.0
    for i, j in pairs:
        theta = 0.7 * float(u[i] @ u[j])
        target = 0.25 * (hier[i, 0] == hier[j, 0]) + 0.75 * (hier[i, 1] == hier[j, 1])
        weight = len(pairs) / (len(counts) * counts[grade[i, j]])
        total += weight * (np.log1p(np.exp(theta)) - target * theta)
    quant = float(((u.abs() - 1) ** 2).sum(dim=1).mean()) / 5
    expected = total / len(pairs) + 0.3 * quant
    assert float(model.loss(u, batch)) == pytest.approx(expected, rel=1e-5)
    model.balanced = False  # unweighted: every pair counts once
    unweighted = sum(np.log1p(np.exp(0.7 * float(u[i] @ u[j])))
                     - (0.25 * (hier[i, 0] == hier[j, 0]) + 0.75 * (hier[i, 1] == hier[j, 1]))
                     * 0.7 * float(u[i] @ u[j]) for i, j in pairs) / len(pairs)
    assert float(model.loss(u, batch)) == pytest.approx(unweighted + 0.3 * quant, rel=1e-5)


# ------------------------------------------------------------------ method references
def test_spectral_hashing_1d_hand_computed() -> None:
    """1-D data uniform on [0, 1]: mode 1 splits at 1/2, mode 2 is positive below 1/4 and above
    3/4 (eigenfunctions sin(π/2 + mπt), t the position in the box)."""
    x = np.linspace(0.0, 1.0, 101)[:, None]
    model = SpectralHashing(2).fit(x)
    probe = np.array([[0.1], [0.3], [0.6], [0.9]])
    np.testing.assert_array_equal(model.encode(probe), [[1, 1], [1, 0], [0, 0], [0, 1]])


def test_spectral_hashing_prefers_long_directions() -> None:
    """Modes go to the direction with the lowest frequency m / width first."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(500, 2)) * np.array([10.0, 1.0])
    model = SpectralHashing(3).fit(x)
    assert model.directions_.tolist() == [0, 0, 0]  # modes 1..3 of the long axis: 3/20 < 1/2
    assert model.modes_.tolist() == [1, 2, 3]


def test_itq_rotation_lowers_quantization_loss() -> None:
    """ITQ's iterations never raise ‖B − VR‖² (Gong & Lazebnik eq. 2) above the random start."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 10)) @ rng.normal(size=(10, 10))

    def loss(model: ITQ) -> float:
        v = (x - model.mean_) @ model.projection_
        return float(((np.where(v >= 0, 1, -1) - v) ** 2).sum())

    start, end = ITQ(6, n_iter=0, seed=2).fit(x), ITQ(6, n_iter=50, seed=2).fit(x)
    assert loss(end) < loss(start)
    projection = end.projection_
    np.testing.assert_allclose(projection.T @ projection, np.eye(6), atol=1e-10)


def _cnnh_objective(codes: np.ndarray, labels: np.ndarray) -> float:
    s = np.where(labels[:, None] == labels[None, :], 1.0, -1.0)
    return float(((codes.shape[1] * s - codes @ codes.T) ** 2).sum())


def test_cnnh_stage1_tiny_case() -> None:
    """Two classes, 4 bits: the optimum gives each class one code and the two codes opposite."""
    labels = np.array([0, 0, 1, 1, 1])
    codes = cnnh_target_codes(as_label_set(labels).finest, 4, seed=0)
    assert codes.dtype == np.float32 and set(np.unique(codes)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(codes[0], codes[1])
    np.testing.assert_array_equal(codes[2], codes[4])
    np.testing.assert_array_equal(codes[0], -codes[2])
    assert _cnnh_objective(codes, labels) == 0.0


@pytest.mark.parametrize("seed", range(3))
def test_cnnh_stage1_is_a_local_optimum(seed: int) -> None:
    """Brute force: after coordinate descent no single bit flip lowers ‖K S − H Hᵀ‖²."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, size=30)
    codes = cnnh_target_codes(as_label_set(labels).finest, 5, seed=seed, max_sweeps=50)
    best = _cnnh_objective(codes, labels)
    for cls in np.unique(labels):
        rows = labels == cls
        assert (codes[rows] == codes[rows][0]).all()
        for k in range(5):
            flipped = codes.copy()
            flipped[rows, k] *= -1
            assert _cnnh_objective(flipped, labels) >= best


@pytest.mark.slow
def test_csq_uses_hash_centers(small_bank: FeatureBank) -> None:
    """CSQ's centers are hashgym's (Hadamard rows for 6 classes and 8 bits); trained codes of
    the training images sit at their class centers."""

    model = make_baseline("csq", 8, epochs=60, hidden=(32,), batch_size=16, lr=3e-3)
    model.fit(small_bank)
    np.testing.assert_array_equal(model.centers_, hash_centers(6, 8, seed=0))
    train = small_bank.view("train")
    dist = hamming(model.encode(train.features), model.centers_)
    assert (dist.argmin(axis=1) == train.labels[:, -1]).mean() > 0.9


def test_csq_takes_the_widest_centre_distance_when_asked() -> None:
    """100 classes have no 12-bit centre set at the default distance (4): CSQ then stops with
    the centres' error, and with ``min_distance="auto"`` trains on centres 2 apart."""
    bank = make_hierarchical_bank((10, 10), n_per_class=3, dim=8, seed=1)
    with pytest.raises(CenterError,
                       match=r"n_classes=100 .* n_bits=12 .* min_distance=4 .* pass 'auto'"):
        make_baseline("csq", 12, **TINY).fit(bank)
    model = make_baseline("csq", 12, min_distance="auto", **TINY).fit(bank)
    assert model.get_params()["min_distance"] == "auto"
    np.testing.assert_array_equal(model.centers_, hash_centers(100, 12, min_distance=2))


# ------------------------------------------------------------------ error paths
def test_unknown_name() -> None:
    with pytest.raises(BaselineError, match="unknown baseline 'nope'; available: lsh"):
        make_baseline("nope", 8)


def test_bad_parameter_name() -> None:
    with pytest.raises(BaselineError, match="bad parameters for baseline 'dsh'.*wobble"):
        make_baseline("dsh", 8, wobble=1)
    with pytest.raises(BaselineError, match="has no parameter 'wobble'"):
        make_baseline("lsh", 8).set_params(wobble=1)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("n_bits", [0, -3])
def test_n_bits_below_one(name: str, n_bits: int) -> None:
    with pytest.raises(BaselineError, match=f"n_bits must be >= 1, got {n_bits}"):
        make_baseline(name, n_bits)


@pytest.mark.parametrize("name", ALL)
def test_encode_before_fit(name: str, tmp_path) -> None:
    model = build(name)
    with pytest.raises(BaselineError, match="is not fitted yet; call fit"):
        model.encode(np.zeros((2, 16)))
    with pytest.raises(BaselineError, match="is not fitted yet"):
        model.save(tmp_path / "m")


@pytest.mark.parametrize("name", ALL)
def test_dimension_mismatch_at_encode(name: str, small_bank: FeatureBank) -> None:
    model = build(name).fit(small_bank)
    with pytest.raises(BaselineError, match="feature dimension mismatch: features have 15 "
                                            "columns but the model was fitted on 16"):
        model.encode(np.zeros((3, 15), dtype=np.float32))
    with pytest.raises(BaselineError, match=r"must be a \[N, D\] matrix"):
        model.encode(np.zeros(16))


@pytest.mark.parametrize("name", ALL)
def test_wrong_label_shape(name: str, small_bank: FeatureBank) -> None:
    x = small_bank.view("train").features
    n = len(x)
    model = build(name)
    with pytest.raises(BaselineError, match=f"length mismatch: {n} feature vectors but {n - 1}"):
        model.fit(x, np.zeros(n - 1, dtype=int))
    with pytest.raises(BaselineError, match="ambiguous: pass label_kind='hierarchy'"):
        model.fit(x, np.zeros((n, 2), dtype=int))
    with pytest.raises(BaselineError, match=r"'hierarchy' labels must have shape \[N, L\]"):
        model.fit(x, np.zeros((n, 2, 1), dtype=int), label_kind="hierarchy")
    with pytest.raises(BaselineError, match="multi_hot labels must contain only 0 and 1"):
        model.fit(x, np.full((n, 3), 2), label_kind="multi_hot")
    with pytest.raises(BaselineError, match="integer class ids"):
        model.fit(x, np.full(n, 0.5))


@pytest.mark.parametrize("name", ALL)
def test_nan_features(name: str, small_bank: FeatureBank) -> None:
    x = small_bank.view("train").features.copy()
    y = small_bank.view("train").labels[:, -1]
    x[3, 5] = np.nan
    with pytest.raises(BaselineError, match=r"X contain NaN or inf \(first at row 3, column 5\)"):
        build(name).fit(x, y)
    model = build(name).fit(small_bank)
    with pytest.raises(BaselineError, match="features contain NaN or inf"):
        model.encode(x)


@pytest.mark.parametrize("name", SUPERVISED)
def test_supervised_needs_labels(name: str, small_bank: FeatureBank) -> None:
    with pytest.raises(BaselineError, match="is supervised: fit\\(\\) needs labels y"):
        build(name).fit(small_bank.features)


def test_bank_with_labels_rejected(small_bank: FeatureBank) -> None:
    with pytest.raises(BaselineError, match="y must be None when fitting on a FeatureBank"):
        make_baseline("lsh", 4).fit(small_bank, np.zeros(small_bank.n, dtype=int))
    with pytest.raises(BaselineError, match="the bank has no multi_hot labels"):
        make_baseline("csq", 4, **TINY).fit(small_bank, label_kind="multi_hot")
    with pytest.raises(BaselineError, match="unknown split 'holdout'"):
        make_baseline("lsh", 4).fit(small_bank, split="holdout")


def test_method_specific_errors(small_bank: FeatureBank) -> None:
    with pytest.raises(BaselineError, match="n_bits must be an integer, got 2.5"):
        make_baseline("lsh", 2.5)  # type: ignore[arg-type]
    with pytest.raises(BaselineError, match="seed must be >= 0, got -1"):
        make_baseline("sh", 4, seed=-1)
    with pytest.raises(BaselineError, match="max_sweeps must be >= 0, got -1"):
        make_baseline("cnnh", 4, max_sweeps=-1)
    with pytest.raises(BaselineError, match="ITQ needs n_bits <= feature dimension"):
        make_baseline("itq", 17).fit(small_bank)
    with pytest.raises(BaselineError, match="level_weights must be 2 non-negative numbers"):
        make_baseline("shdh", 4, level_weights=(1.0,), **TINY).fit(small_bank)
    with pytest.raises(BaselineError,
                       match=r"scale must be a finite number in \(0.0, inf\], got 0"):
        make_baseline("shdh", 4, scale=0)
    with pytest.raises(BaselineError, match="epochs must be >= 1, got 0"):
        make_baseline("dch", 4, epochs=0)
    with pytest.raises(BaselineError, match="lr must be a finite non-negative number"):
        make_baseline("dch", 4, lr=float("nan"))
    with pytest.raises(BaselineError, match="hidden must be positive layer widths"):
        make_baseline("dch", 4, hidden=(8, 0))


def test_load_errors(small_bank: FeatureBank, tmp_path) -> None:
    with pytest.raises(BaselineError, match="no saved baseline at"):
        load_baseline(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(BaselineError, match="not a saved model"):
        load_baseline(junk)
    path = make_baseline("lsh", 4).fit(small_bank).save(tmp_path / "lsh.npz")
    with pytest.raises(BaselineError, match="holds a 'lsh' model, not a ITQ"):
        ITQ.load(path)
    truncated = tmp_path / "truncated.model"
    deep = build("dpsh", 4).fit(small_bank).save(tmp_path / "dpsh.model")
    truncated.write_bytes(deep.read_bytes()[:200])
    with pytest.raises(BaselineError, match="cannot read baseline"):
        load_baseline(truncated)
