"""Image sources and the seeded stratified helpers of :mod:`hashgym.datasets`."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from hashgym.datasets import (
    DatasetError,
    ImageSet,
    load_cifar100_npz,
    load_nuswide_list,
    load_torchvision_cifar,
    stratified_sample,
    stratified_split,
)


# ---------------------------------------------------------------------- shared npz
def _write_cifar_npz(path: Path, n: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    fine_to_coarse = np.array([0, 0, 1, 1], dtype=np.int16)
    fine = np.arange(n, dtype=np.int16) % 4
    arrays = {
        "images": rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8),
        "fine_labels": fine,
        "coarse_labels": fine_to_coarse[fine],
        "fine_to_coarse": fine_to_coarse,
        "fine_names": np.array(["apple", "pear", "oak", "pine"]),
        "coarse_names": np.array(["fruit", "trees"]),
    }
    np.savez(path, **arrays)
    return arrays


def test_cifar100_npz_two_levels(tmp_path: Path) -> None:
    arrays = _write_cifar_npz(tmp_path / "c.npz")
    s = load_cifar100_npz(tmp_path / "c.npz")
    assert len(s) == 12 and s.in_memory and s.split is None
    assert s.level_names == ("coarse", "fine")
    assert s.class_names == (("fruit", "trees"), ("apple", "pear", "oak", "pine"))
    np.testing.assert_array_equal(s.labels[:, 0], arrays["coarse_labels"])
    np.testing.assert_array_equal(s.labels[:, 1], arrays["fine_labels"])
    np.testing.assert_array_equal(s.read(np.array([3, 1])), arrays["images"][[3, 1]])


def test_cifar100_npz_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no CIFAR-100 images at"):
        load_cifar100_npz(tmp_path / "absent.npz")
    np.savez(tmp_path / "partial.npz", images=np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(DatasetError, match="missing .*fine_labels"):
        load_cifar100_npz(tmp_path / "partial.npz")
    _write_cifar_npz(tmp_path / "c.npz")
    data = (tmp_path / "c.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupted"):
        load_cifar100_npz(tmp_path / "cut.npz")


def test_shared_cifar100_npz(shared_data: Path) -> None:
    s = load_cifar100_npz(shared_data / "cifar100" / "cifar100.npz")
    assert len(s) == 60000 and s.images.shape == (60000, 32, 32, 3)
    assert [len(n) for n in s.class_names] == [20, 100]
    assert np.bincount(s.labels[:, 1]).tolist() == [600] * 100
    # every fine class has a single parent
    pairs = np.unique(s.labels, axis=0)
    assert len(pairs) == 100
    assert s.class_names[1][56] == "palm_tree" and s.class_names[0][17] == "trees"


# ---------------------------------------------------------------------- torchvision CIFAR
def _pickle(path: Path, obj: object) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def _fake_cifar_root(root: Path, name: str) -> dict[str, np.ndarray]:
    """The standard torchvision layout with a handful of made-up images."""
    rng = np.random.default_rng(1)
    if name == "cifar100":
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True)
        train = rng.integers(0, 256, size=(6, 3072), dtype=np.uint8)
        test = rng.integers(0, 256, size=(3, 3072), dtype=np.uint8)
        fine_tr, fine_te = [0, 1, 2, 3, 0, 2], [1, 3, 2]
        f2c = [0, 0, 1, 1]
        _pickle(
            folder / "train",
            {"data": train, "fine_labels": fine_tr, "coarse_labels": [f2c[f] for f in fine_tr]},
        )
        _pickle(
            folder / "test",
            {"data": test, "fine_labels": fine_te, "coarse_labels": [f2c[f] for f in fine_te]},
        )
        _pickle(
            folder / "meta",
            {
                "fine_label_names": ["apple", "pear", "oak", "pine"],
                "coarse_label_names": ["fruit", "trees"],
            },
        )
        return {"train": train, "test": test}
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for i in range(1, 6):
        batches[f"data_batch_{i}"] = rng.integers(0, 256, size=(2, 3072), dtype=np.uint8)
        _pickle(
            folder / f"data_batch_{i}", {"data": batches[f"data_batch_{i}"], "labels": [i % 3, 0]}
        )
    batches["test_batch"] = rng.integers(0, 256, size=(2, 3072), dtype=np.uint8)
    _pickle(folder / "test_batch", {"data": batches["test_batch"], "labels": [1, 2]})
    _pickle(folder / "batches.meta", {"label_names": ["cat", "dog", "ship"]})
    return batches


def test_torchvision_cifar100_unverified(tmp_path: Path) -> None:
    raw = _fake_cifar_root(tmp_path, "cifar100")
    s = load_torchvision_cifar(tmp_path, "cifar100", verify=False)
    assert len(s) == 9 and s.level_names == ("coarse", "fine")
    assert s.split.tolist() == [0] * 6 + [1] * 3  # official train = database, test = query
    assert s.labels[:, 1].tolist() == [0, 1, 2, 3, 0, 2, 1, 3, 2]
    assert s.labels[:, 0].tolist() == [0, 0, 1, 1, 0, 1, 0, 1, 1]
    assert s.class_names[0] == ("fruit", "trees")
    # CHW rows become HWC images: pixel (row 2, col 5) of channel 1 of the second test image
    img = raw["test"][1].reshape(3, 32, 32)
    assert s.images[7, 2, 5, 1] == img[1, 2, 5]
    np.testing.assert_array_equal(
        s.images[0], raw["train"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    )


def test_torchvision_cifar10_one_level(tmp_path: Path) -> None:
    _fake_cifar_root(tmp_path, "cifar10")
    s = load_torchvision_cifar(tmp_path, "cifar10", verify=False)
    assert len(s) == 12 and s.labels.shape == (12, 1)
    assert s.class_names == (("cat", "dog", "ship"),)
    assert s.split.tolist() == [0] * 10 + [1] * 2
    assert s.labels[-2:, 0].tolist() == [1, 2]


def test_torchvision_cifar_refuses_unverified_files(tmp_path: Path) -> None:
    _fake_cifar_root(tmp_path, "cifar100")
    with pytest.raises(DatasetError, match="does not match the official cifar100 MD5"):
        load_torchvision_cifar(tmp_path, "cifar100")


def test_torchvision_cifar_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cifar10 file missing: .*data_batch_1.*download=True"):
        load_torchvision_cifar(tmp_path, "cifar10")
    with pytest.raises(DatasetError, match="unknown CIFAR name 'cifar1000'"):
        load_torchvision_cifar(tmp_path, "cifar1000")  # type: ignore[arg-type]


class _Evil:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned > pwned.txt",))


def test_unverified_files_cannot_run_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cifar_root(tmp_path, "cifar100")
    _pickle(tmp_path / "cifar-100-python" / "train", {"data": _Evil(), "fine_labels": []})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match="refusing to unpickle (posix|nt).system"):
        load_torchvision_cifar(tmp_path, "cifar100", verify=False)
    assert not (tmp_path / "pwned.txt").exists()


def test_torchvision_cifar_malformed_batch(tmp_path: Path) -> None:
    _fake_cifar_root(tmp_path, "cifar100")
    _pickle(
        tmp_path / "cifar-100-python" / "test",
        {"data": np.zeros((3, 10), np.uint8), "fine_labels": [0, 0, 0]},
    )
    with pytest.raises(DatasetError, match=r"'data' must be uint8 \[n, 3072\]"):
        load_torchvision_cifar(tmp_path, "cifar100", verify=False)
    _pickle(tmp_path / "cifar-100-python" / "test", {"data": np.zeros((3, 3072), np.uint8)})
    with pytest.raises(DatasetError, match="lacks the key 'fine_labels'"):
        load_torchvision_cifar(tmp_path, "cifar100", verify=False)


# ---------------------------------------------------------------------- NUS-WIDE
def _nuswide(tmp_path: Path, n: int = 5, concepts: int = 21) -> tuple[Path, Path, np.ndarray]:
    from PIL import Image

    rng = np.random.default_rng(2)
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    hot = (rng.random((n, concepts)) < 0.3).astype(np.uint8)
    lines = []
    for i in range(n):
        rel = f"sub/img_{i}.png"
        Image.fromarray(rng.integers(0, 256, size=(20 + i, 30, 3), dtype=np.uint8)).save(root / rel)
        lines.append(rel + " " + " ".join(map(str, hot[i])))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    return listing, root, hot


def test_nuswide_list(tmp_path: Path) -> None:
    listing, root, hot = _nuswide(tmp_path)
    s = load_nuswide_list(listing, root)
    assert len(s) == 5 and not s.in_memory and s.split is None
    assert s.labels.shape == (5, 0)
    np.testing.assert_array_equal(s.multi_hot, hot)
    assert s.concept_names[0] == "concept00" and len(s.concept_names) == 21
    batch = s.read(np.array([4, 0]), size=16)
    assert batch.shape == (2, 16, 16, 3) and batch.dtype == np.uint8


def test_nuswide_query_list_and_names(tmp_path: Path) -> None:
    listing, root, hot = _nuswide(tmp_path)
    lines = listing.read_text().splitlines()
    (tmp_path / "db.txt").write_text("\n".join(lines[:3]))
    (tmp_path / "q.txt").write_text("\n".join(lines[3:]))
    names = tmp_path / "concepts.txt"
    names.write_text("\n".join(f"c{i}" for i in range(21)))
    s = load_nuswide_list(
        tmp_path / "db.txt", root, query_list=tmp_path / "q.txt", concept_names=names
    )
    assert s.split.tolist() == [0, 0, 0, 1, 1]
    assert s.concept_names[-1] == "c20"
    np.testing.assert_array_equal(s.multi_hot, hot)


def test_nuswide_errors(tmp_path: Path) -> None:
    listing, root, _ = _nuswide(tmp_path)
    lines = listing.read_text().splitlines()
    bad = tmp_path / "bad.txt"
    bad.write_text(lines[0] + "\n" + lines[1] + " 0\n")
    with pytest.raises(DatasetError, match=r"bad.txt:2: ragged line, 22 concept values where 21"):
        load_nuswide_list(bad, root)
    bad.write_text(lines[0].rsplit(" ", 1)[0] + " 2\n")
    with pytest.raises(DatasetError, match=r"bad.txt:1: concept values must be 0 or 1, got '2'"):
        load_nuswide_list(bad, root)
    bad.write_text("sub/img_0.png 0 1 1 0 1\n")
    with pytest.raises(DatasetError, match="5 concept values; NUS-WIDE lists have 21 or 81"):
        load_nuswide_list(bad, root)
    (root / "sub" / "img_3.png").unlink()
    with pytest.raises(DatasetError, match="1 image file.* missing .*sub/img_3.png"):
        load_nuswide_list(listing, root)
    s = load_nuswide_list(listing, root, check_files=False)
    with pytest.raises(DatasetError, match="image file missing: .*img_3.png"):
        s.read(np.array([3]))
    with pytest.raises(DatasetError, match="no NUS-WIDE list file"):
        load_nuswide_list(tmp_path / "absent.txt", root)
    with pytest.raises(DatasetError, match="is not a folder"):
        load_nuswide_list(listing, tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="21 concepts but 2 concept names"):
        load_nuswide_list(listing, root, concept_names=["a", "b"], check_files=False)
    q = tmp_path / "q81.txt"
    q.write_text("sub/img_0.png " + " ".join(["0"] * 81) + "\n")
    with pytest.raises(DatasetError, match="has 81 concepts but .* has 21"):
        load_nuswide_list(listing, root, query_list=q, check_files=False)


# ---------------------------------------------------------------------- ImageSet
def test_image_set_validation() -> None:
    img = np.zeros((2, 4, 4, 3), np.uint8)
    ok = {"labels": np.array([0, 1]), "class_names": (("a", "b"),), "level_names": ("x",)}
    with pytest.raises(DatasetError, match="exactly one of images= and paths="):
        ImageSet(**ok)
    with pytest.raises(DatasetError, match=r"images must be uint8 \[N, H, W, 3\]"):
        ImageSet(images=img.astype(np.float32), **ok)
    with pytest.raises(DatasetError, match="length mismatch: 3 images"):
        ImageSet(images=np.zeros((3, 4, 4, 3), np.uint8), **ok)
    with pytest.raises(DatasetError, match="labels out of range at level 0: expected 0..1"):
        ImageSet(images=img, **{**ok, "labels": np.array([0, 2])})
    with pytest.raises(DatasetError, match="split must be 0/1"):
        ImageSet(images=img, split=np.array([0, 2]), **ok)


def test_strata_multi_hot_rarest_concept() -> None:
    # concept frequencies: c0 = 3, c1 = 1, c2 = 2
    hot = np.array([[1, 0, 1], [1, 1, 0], [1, 0, 1], [0, 0, 0]], np.uint8)
    s = ImageSet(
        labels=np.zeros((4, 0), np.int16),
        class_names=(),
        level_names=(),
        images=np.zeros((4, 2, 2, 3), np.uint8),
        multi_hot=hot,
    )
    assert s.strata().tolist() == [2, 1, 2, -1]


def test_content_hash_sees_one_pixel() -> None:
    img = np.zeros((2, 4, 4, 3), np.uint8)
    kw = {"labels": np.array([0, 1]), "class_names": (("a", "b"),), "level_names": ("x",)}
    a = ImageSet(images=img, **kw).content_hash()
    assert a == ImageSet(images=img.copy(), **kw).content_hash()
    img2 = img.copy()
    img2[1, 3, 3, 2] = 1
    assert a != ImageSet(images=img2, **kw).content_hash()
    assert a != ImageSet(images=img, **{**kw, "labels": np.array([1, 0])}).content_hash()


# ---------------------------------------------------------------------- sampling helpers
def test_stratified_sample_hand_case() -> None:
    strata = np.array([0] * 6 + [1] * 3)
    rows = stratified_sample(strata, 3, seed=0)
    assert np.bincount(strata[rows]).tolist() == [2, 1]
    assert rows.tolist() == sorted(rows.tolist()) and len(set(rows.tolist())) == 3
    np.testing.assert_array_equal(rows, stratified_sample(strata, 3, seed=0))
    draws = {tuple(stratified_sample(strata, 3, seed=s)) for s in range(10)}
    assert len(draws) > 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stratified_sample_keeps_shares(seed: int) -> None:
    rng = np.random.default_rng(seed)
    strata = rng.integers(0, 7, size=500)
    n = 123
    rows = stratified_sample(strata, n, seed=seed)
    assert len(rows) == n
    sizes, got = np.bincount(strata, minlength=7), np.bincount(strata[rows], minlength=7)
    assert np.all(np.abs(got - sizes * n / len(strata)) < 1)  # within rounding of the exact share


def test_stratified_sample_errors() -> None:
    with pytest.raises(
        DatasetError, match=r"limit must be between 1 and the number of images \(4\), got 5"
    ):
        stratified_sample(np.zeros(4), 5)
    with pytest.raises(DatasetError, match="got 0"):
        stratified_sample(np.zeros(4), 0)


def test_stratified_split_cifar_proportions() -> None:
    strata = np.repeat(np.arange(5), 600)
    split = stratified_split(strata, seed=0)
    assert split.dtype == np.int8
    assert np.bincount(strata[split == 1]).tolist() == [100] * 5
    small = stratified_split(np.repeat(np.arange(4), 3), seed=0)
    assert small.sum() == 2  # round(12 / 6)
    assert stratified_split(np.array([0, 0]), 0.01).tolist().count(1) == 1  # at least one query
    assert not np.array_equal(split, stratified_split(strata, seed=1))


def test_stratified_split_errors() -> None:
    with pytest.raises(
        DatasetError, match="query_fraction must lie strictly between 0 and 1, got 1"
    ):
        stratified_split(np.zeros(10), 1)
    with pytest.raises(DatasetError, match="needs at least 2 images, got 1"):
        stratified_split(np.zeros(1))


def test_stratified_sample_keeps_both_split_parts() -> None:
    strata = np.repeat(np.arange(100), 600)
    split = np.zeros(len(strata), np.int8)
    split[np.arange(len(strata)) % 6 == 0] = 1  # 100 queries per class
    rows = stratified_sample(strata, 40, seed=0, split=split)
    assert len(rows) == 40 and split[rows].sum() == 7  # round(40 / 6) queries
    for part, count in ((1, 7), (0, 33)):  # inside each part, no class is drawn twice
        assert len(np.unique(strata[rows][split[rows] == part])) == count
    rows = stratified_sample(strata, 1200, seed=0, split=split)
    assert np.bincount(strata[rows][split[rows] == 1]).tolist() == [2] * 100
    with pytest.raises(DatasetError, match="needs a limit of at least 2"):
        stratified_sample(strata, 1, split=split)
    with pytest.raises(DatasetError, match="both parts non-empty"):
        stratified_sample(np.zeros(4), 2, split=np.zeros(4))


def test_torchvision_cifar_verified_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With verify=True, files whose checksum matches are read (checksums faked here)."""
    import torchvision.datasets.utils as tv_utils

    _fake_cifar_root(tmp_path, "cifar100")
    checked: list[str] = []
    monkeypatch.setattr(
        tv_utils, "check_integrity", lambda path, md5=None: checked.append(Path(path).name) or True
    )
    s = load_torchvision_cifar(tmp_path, "cifar100")
    assert len(s) == 9 and s.meta["verified"] is True
    assert s.meta["image_source"] == {"kind": "torchvision-cifar", "root": str(tmp_path.resolve()),
                                      "name": "cifar100", "verify": True}
    assert sorted(set(checked)) == ["meta", "test", "train"]


def test_torchvision_cifar_download_uses_official_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets.utils as tv_utils

    calls: list[tuple] = []
    monkeypatch.setattr(
        tv_utils,
        "download_and_extract_archive",
        lambda url, root, filename=None, md5=None: calls.append((url, md5)),
    )
    with pytest.raises(DatasetError, match="cifar10 file missing"):
        load_torchvision_cifar(tmp_path, "cifar10", download=True)
    assert calls == [
        (
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "c58f30108f718f92721af3b95e74349a",
        )
    ]


# ---------------------------------------------------------------------- banks name their images
def test_a_bank_from_torchvision_files_reads_its_images_there(tmp_path: Path) -> None:
    """hashgym features on torchvision's CIFAR files: the bank names the folder, and image
    observations read the same pixels from it, after a save and load too."""
    import gymnasium as gym

    from hashgym.bank import FeatureBank
    from hashgym.features import extract_features
    from hashgym.images import ImageError, bank_images, image_shape

    raw = _fake_cifar_root(tmp_path / "tv", "cifar100")
    s = load_torchvision_cifar(tmp_path / "tv", "cifar100", verify=False)
    bank = extract_features(s, batch_size=16, progress=False, device="cpu")
    assert bank.meta["image_source"]["kind"] == "torchvision-cifar"
    loaded = FeatureBank.load(bank.save(tmp_path / "bank.npz"))
    assert image_shape(loaded) == (32, 32, 3)
    np.testing.assert_array_equal(bank_images(loaded, np.arange(9)), s.images)
    np.testing.assert_array_equal(  # the third test image, from the file's CHW rows
        bank_images(loaded, [8])[0], raw["test"][2].reshape(3, 32, 32).transpose(1, 2, 0))
    env = gym.make("CentralHash-v0", bank=loaded, observation="image", n_bits=8)
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs["features"], s.images[info["index"]])
    (tmp_path / "tv" / "cifar-100-python" / "test").unlink()
    with pytest.raises(ImageError, match=r"torchvision CIFAR images cannot be read: cifar100 file "
                                         r"missing: .*test"):
        bank_images(loaded, [0])


def test_a_verified_source_is_verified_again_when_read(tmp_path: Path) -> None:
    """A bank made from checksummed files reads them with checksums on: files that no longer
    match (here: every file, as these are made up) are refused, not unpickled."""
    from hashgym.bank import FeatureBank
    from hashgym.images import ImageError, bank_images

    _fake_cifar_root(tmp_path, "cifar10")
    bank = FeatureBank(features=np.zeros((12, 2), np.float32), labels=np.zeros((12, 1), int),
                       class_names=(("a",),), split=np.arange(12, dtype=np.int8) % 2,
                       image_index=np.arange(12), meta={"image_source": {
                           "kind": "torchvision-cifar", "root": str(tmp_path), "name": "cifar10",
                           "verify": True}})
    with pytest.raises(ImageError, match=r"does not match the official cifar10 MD5 checksum"):
        bank_images(bank, [0])
