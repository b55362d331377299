"""Protocol presets and resolve_bank: splits, seeding, recording, errors."""

from __future__ import annotations

import numpy as np
import pytest

from hashgym.bank import DATABASE, QUERY, BankError, FeatureBank
from hashgym.data.build_mini_bank import build_mini_bank
from hashgym.protocols import (
    PROTOCOLS,
    apply_protocol,
    class_slices,
    development_twin,
    is_development,
    preset_names,
    resolve_bank,
)
from hashgym.synthetic import make_hierarchical_bank


def test_preset_names_cover_every_source_and_protocol():
    names = preset_names()
    assert {"cifar100", "cifar100-trees-people", "cifar100-csq", "cifar100-mini",
            "cifar100-mini-csq", "cifar100-mini-trees-people", "cifar100-holdout",
            "cifar100-mini-holdout", "cifar100-dev", "cifar100-dev-csq",
            "cifar100-dev-trees-people", "cifar100-dev-holdout", "cifar100-unseen",
            "cifar100-dev-unseen", "cifar100-mini-unseen", "cifar100-dev-mini",
            "cifar100-dev-mini-csq", "cifar100-dev-mini-trees-people", "cifar100-dev-mini-holdout",
            "cifar100-dev-mini-unseen"} == set(names)
    assert len(names) == 4 * len(PROTOCOLS)


def test_unknown_preset_and_protocol():
    with pytest.raises(BankError, match="unknown preset 'imagenet'; known presets: cifar100, "):
        resolve_bank("imagenet")
    with pytest.raises(BankError, match="unknown preset 'cifar100-mini-nope'"):
        resolve_bank("cifar100-mini-nope")
    with pytest.raises(BankError, match="unknown protocol 'random'; known: standard, trees-people, csq, holdout"):
        apply_protocol(make_hierarchical_bank(), "random")


def test_missing_shared_bank_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHGYM_DATA", str(tmp_path))
    with pytest.raises(BankError, match=r"preset 'cifar100-csq' needs the bank file .*set \$HASHGYM_DATA"):
        resolve_bank("cifar100-csq")


def test_default_is_builtin_mini_bank():
    bank = resolve_bank()
    assert (bank.n, bank.dim, bank.n_classes) == (9000, 128, (20, 100))
    assert (len(bank.indices("query")), len(bank.indices("database"))) == (2000, 7000)
    counts = np.bincount(bank.labels[bank.split == QUERY, 1], minlength=100)
    assert (counts == 20).all()
    assert bank.meta["protocol"]["name"] == "standard"
    from importlib import resources
    size = resources.files("hashgym.data").joinpath("cifar100_mini.npz").stat().st_size
    assert size <= 5_000_000


def test_builtin_development_twin_loads_without_the_data_folder(tmp_path, monkeypatch):
    """``cifar100-dev-mini`` loads with no data folder, is marked a development bank and has the
    mini bank's shape (which images it holds: the slow test below, on the shared data)."""
    monkeypatch.setenv("HASHGYM_DATA", str(tmp_path))
    dev, mini = resolve_bank("cifar100-dev-mini"), resolve_bank("cifar100-mini")
    assert is_development(dev) and not is_development(mini)
    assert (dev.n, dev.dim, dev.n_classes) == (mini.n, mini.dim, mini.n_classes)
    assert (len(dev.indices("query")), len(dev.indices("database"))) == (2000, 7000)
    assert "image_source" not in dev.meta  # projected features: no images attached
    assert dev.meta["source"] == "cifar100_resnet18_dev_features.npz"
    assert dev.meta["pca"]["fitted_on"] == "the 45,000 database images"


def test_bank_and_path_specs(tmp_path, hier_bank):
    assert resolve_bank(hier_bank) is hier_bank
    path = hier_bank.save(tmp_path / "b.npz")
    assert resolve_bank(path).n == hier_bank.n
    assert resolve_bank(str(path), protocol="csq").meta["protocol"]["name"] == "csq"


def test_holdout_draws_queries_from_the_training_images_only():
    """10% of every finest class's training images become queries, the rest database and
    training set; the bank's own queries are gone; the seed decides which images."""
    bank = make_hierarchical_bank(branching=(2, 3), n_per_class=20, dim=8, seed=0)
    train_rows = np.flatnonzero(bank.train_mask)
    out = apply_protocol(bank, "holdout", seed=3)
    np.testing.assert_array_equal(out.features, bank.features[train_rows])
    np.testing.assert_array_equal(out.labels, bank.labels[train_rows])
    query, database = out.indices("query"), out.indices("database")
    np.testing.assert_array_equal(out.indices("train"), database)
    per_class = np.bincount(out.labels[:, -1], minlength=6)
    held = np.bincount(out.labels[query, -1], minlength=6)
    np.testing.assert_array_equal(held, np.maximum(1, np.round(0.1 * per_class)))
    assert out.meta["protocol"] == {"name": "holdout", "seed": 3, "query": len(query),
                                    "database": len(database), "train": len(database)}
    again, other = apply_protocol(bank, "holdout", seed=3), apply_protocol(bank, "holdout", seed=4)
    np.testing.assert_array_equal(again.split, out.split)
    assert not np.array_equal(other.split, out.split)
    lonely = bank.take(np.r_[np.flatnonzero(bank.labels[:, -1] != 0),
                             np.flatnonzero((bank.labels[:, -1] == 0) & bank.train_mask)[:1]])
    with pytest.raises(BankError, match="protocol 'holdout' needs two training images of every "
                                        "class; class 0 has 1"):
        apply_protocol(lonely, "holdout")


def test_standard_protocol_trains_on_database(hier_bank):
    out = apply_protocol(hier_bank.replace(train=hier_bank.split == DATABASE), "standard")
    np.testing.assert_array_equal(out.indices("train"), out.indices("database"))
    assert out.meta["protocol"] == {"name": "standard", "seed": 0, "query": 48, "database": 192,
                                    "train": 192}


def test_csq_protocol_is_stratified_disjoint_and_seeded():
    bank = make_hierarchical_bank(branching=(2, 5), n_per_class=600, dim=4)
    # 10 fine classes x 600 images = 6,000 images: one tenth of CIFAR-100's size.
    out = apply_protocol(bank, "csq", seed=3)
    fine = out.labels[:, 1]
    query, train = out.split == QUERY, out.train_mask
    assert not np.any(query & train)
    assert np.all(out.split[train] == DATABASE)
    # 1,000 / 5,000 scaled by 6,000 / 60,000 over 10 classes: 10 query and 50 train per class.
    assert (np.bincount(fine[query]) == 10).all() and (np.bincount(fine[train]) == 50).all()
    assert out.meta["protocol"] == {"name": "csq", "seed": 3, "query": 100, "database": 5900,
                                    "train": 500}
    again = apply_protocol(bank, "csq", seed=3)
    np.testing.assert_array_equal(out.split, again.split)
    np.testing.assert_array_equal(out.train, again.train)
    other = apply_protocol(bank, "csq", seed=4)
    assert not np.array_equal(out.split, other.split)


def test_csq_protocol_needs_enough_images_per_class():
    bank = FeatureBank(features=np.ones((6, 2), dtype=np.float32),
                       labels=np.array([[0, 0], [0, 1], [1, 2], [1, 2], [0, 0], [1, 3]]),
                       class_names=(("a", "b"), ("a0", "a1", "b0", "b1")),
                       split=np.array([0, 0, 0, 1, 1, 0], dtype=np.int8))
    with pytest.raises(BankError, match="protocol 'csq' needs 1 images of class 'a1' in the bank's query split, the bank has 0"):
        apply_protocol(bank, "csq")


def test_trees_people_needs_those_classes(hier_bank):
    with pytest.raises(BankError, match="needs level-0 classes 'trees' and 'people'; this bank has no 'trees', 'people'"):
        apply_protocol(hier_bank, "trees-people")


def test_trees_people_on_mini_bank():
    bank = resolve_bank("cifar100-mini-trees-people")
    names = {bank.class_names[0][c] for c in np.unique(bank.labels[:, 0])}
    assert names == {"trees", "people"}
    assert (len(bank.indices("query")), len(bank.indices("database"))) == (200, 700)
    assert len(np.unique(bank.labels[:, 1])) == 10


def test_protocol_is_recorded_in_saved_bank(tmp_path):
    bank = resolve_bank("cifar100-mini-csq", seed=7)
    loaded = FeatureBank.load(bank.save(tmp_path / "csq.npz"))
    assert loaded.meta["protocol"]["name"] == "csq" and loaded.meta["protocol"]["seed"] == 7
    np.testing.assert_array_equal(loaded.train_mask, bank.train_mask)


def test_shared_presets(shared_data, monkeypatch):
    monkeypatch.setenv("HASHGYM_DATA", str(shared_data))
    csq = resolve_bank("cifar100-csq")
    assert (len(csq.indices("query")), len(csq.indices("train")), len(csq.indices("database"))) == (
        1000, 5000, 59000)
    tp = resolve_bank("cifar100-trees-people")
    assert (len(tp.indices("query")), len(tp.indices("database"))) == (1000, 5000)


def test_mini_bank_pca_ignores_query_images():
    full = make_hierarchical_bank(branching=(2, 3), n_per_class=20, dim=16, seed=1)
    features = np.array(full.features)
    features[full.split == QUERY] *= 100.0
    changed = full.replace(features=features)
    a = build_mini_bank(full, n_database=5, n_query=2, dim=4)
    b = build_mini_bank(changed, n_database=5, n_query=2, dim=4)
    db = a.split == DATABASE
    np.testing.assert_array_equal(a.features[db], b.features[db])
    n_database = int((full.split == DATABASE).sum())
    assert a.n == 6 * 7 and a.dim == 4
    assert a.meta["pca"]["fitted_on"] == f"the {n_database:,} database images"


@pytest.mark.slow
def test_development_presets_load_with_their_own_split(shared_data, monkeypatch):
    monkeypatch.setenv("HASHGYM_DATA", str(shared_data))
    dev = resolve_bank("cifar100-dev")
    assert dev.meta["development"] is True
    assert (len(dev.indices("query")), len(dev.indices("database"))) == (5000, 45000)
    assert (np.bincount(dev.labels[dev.indices("query"), 1]) == 50).all()
    csq = resolve_bank("cifar100-dev-csq")
    assert (len(csq.indices("query")), len(csq.indices("train")), len(csq.indices("database"))) == (
        1000, 5000, 49000)
    tp = resolve_bank("cifar100-dev-trees-people")
    assert {tp.class_names[0][c] for c in np.unique(tp.labels[:, 0])} == {"trees", "people"}
    assert (len(tp.indices("query")), len(tp.indices("database"))) == (500, 4500)
    # rows name their images in cifar100.npz: none of the shared bank's test queries is here
    shared = resolve_bank("cifar100")
    assert not np.isin(dev.image_index, shared.indices("query")).any()
    np.testing.assert_array_equal(dev.labels, shared.labels[dev.image_index])
    # the built-in twin of cifar100-mini is this bank's subset: rebuilt, it is the shipped file;
    # its queries are validation queries (unseen by the development backbone), no test image
    mini = resolve_bank("cifar100-dev-mini")
    rebuilt = build_mini_bank(FeatureBank.load(shared_data / "cifar100" /
                                               "cifar100_resnet18_dev_features.npz"))
    assert rebuilt.fingerprint() == mini.fingerprint()
    np.testing.assert_array_equal(rebuilt.image_index, mini.image_index)
    validation = dev.image_index[dev.split == QUERY]
    assert np.isin(mini.image_index[mini.split == QUERY], validation).all()
    assert not np.isin(mini.image_index[mini.split == DATABASE], validation).any()
    assert not np.isin(mini.image_index, shared.indices("query")).any()


@pytest.mark.slow
def test_csq_queries_are_images_the_backbone_never_saw(shared_data, monkeypatch):
    """The shared bank's backbone trained on its database split (rows = cifar100.npz images);
    the development bank's on its own database split. csq's queries avoid both."""
    monkeypatch.setenv("HASHGYM_DATA", str(shared_data))
    for preset, source in (("cifar100-csq", "cifar100"), ("cifar100-dev-csq", "cifar100-dev")):
        csq, full = resolve_bank(preset), resolve_bank(source)
        trained_on = set(full.image_index[full.split == DATABASE].tolist())
        queries = csq.image_index[csq.indices("query")]
        assert len(queries) == 1000 and not trained_on.intersection(queries.tolist())
        # training images come from what the backbone trained on; the rest is database
        assert trained_on.issuperset(csq.image_index[csq.indices("train")].tolist())
        assert len(csq.indices("database")) == full.n - 1000


def test_development_twins():
    assert development_twin("cifar100") == "cifar100-dev"
    assert development_twin("cifar100-holdout") == "cifar100-dev"
    assert development_twin("cifar100-csq") == "cifar100-dev-csq"
    assert development_twin("cifar100-trees-people") == "cifar100-dev-trees-people"
    assert development_twin("cifar100-mini") == "cifar100-dev-mini"
    assert development_twin("cifar100-mini-csq") == "cifar100-dev-mini-csq"
    for name in ("cifar100-dev", "cifar100-dev-csq", "cifar100-dev-mini", "bank.npz", "nonsense"):
        assert development_twin(name) is None


def test_unseen_protocol_trains_on_seen_classes_only(hier_bank):
    out = apply_protocol(hier_bank, "unseen", seed=5)
    unseen = out.meta["protocol"]["unseen_classes"]
    fine = out.labels[:, 1]
    assert len(unseen) == 3  # a quarter of the 12 fine classes
    assert not np.isin(fine[out.train_mask], unseen).any()
    np.testing.assert_array_equal(out.split, hier_bank.split)
    seen_db = (out.split == DATABASE) & ~np.isin(fine, unseen)
    np.testing.assert_array_equal(out.train_mask, seen_db)
    assert apply_protocol(hier_bank, "unseen", seed=5).meta["protocol"] == out.meta["protocol"]
    assert apply_protocol(hier_bank, "unseen", seed=6).meta["protocol"]["unseen_classes"] != unseen
    # the slices, against a loop over the rows
    slices = class_slices(out)
    q, db = out.indices("query"), out.indices("database")
    for name, (q_mask, d_mask) in slices.items():
        query_part, database_part = name.split("@")
        for rows, mask, part in ((q, q_mask, query_part), (db, d_mask, database_part)):
            expected = [part == "all" or (int(fine[r]) in unseen) == (part == "unseen")
                        for r in rows]
            assert mask.tolist() == expected, name
    # re-splitting drops the record, so stale unseen classes cannot leak into a new split
    plain = apply_protocol(out, "standard")
    assert "unseen_classes" not in plain.meta["protocol"]
    with pytest.raises(BankError, match="this bank records no unseen classes: split it with "
                                        "protocol 'unseen'"):
        class_slices(plain)


def test_unseen_protocol_needs_three_classes():
    bank = make_hierarchical_bank(branching=(1, 2), n_per_class=10, dim=4)
    with pytest.raises(BankError, match="protocol 'unseen' leaves a quarter of the classes out "
                                        "of training and needs at least 3 classes, the bank "
                                        "has 2"):
        apply_protocol(bank, "unseen")


def test_unseen_presets_pick_the_same_classes_on_both_twins(shared_data, monkeypatch):
    monkeypatch.setenv("HASHGYM_DATA", str(shared_data))
    test, dev = resolve_bank("cifar100-unseen"), resolve_bank("cifar100-dev-unseen")
    assert test.meta["protocol"]["unseen_classes"] == dev.meta["protocol"]["unseen_classes"]
    assert len(test.meta["protocol"]["unseen_classes"]) == 25
    assert (len(test.indices("train")), len(dev.indices("train"))) == (37500, 33750)
