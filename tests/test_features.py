"""Feature extraction (:mod:`hashgym.features`): banks, cache, training isolation, weights."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hashgym import features
from hashgym.atomic import OutputPathError
from hashgym.backbones import BackboneError
from hashgym.bank import FeatureBank
from hashgym.cli import main
from hashgym.datasets import DatasetError, ImageSet, load_cifar100_npz
from hashgym.features import FeatureError, extract_features

FAST = {"batch_size": 16, "progress": False, "device": "cpu"}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _tiny(n_per_fine: int = 8, seed: int = 0) -> ImageSet:
    """2 coarse x 2 fine classes, 32x32 images whose mean colour depends on the class."""
    rng = np.random.default_rng(seed)
    fine = np.repeat(np.arange(4), n_per_fine)
    colour = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]])
    noise = rng.integers(-40, 40, size=(len(fine), 32, 32, 3))
    images = np.clip(colour[fine][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    return ImageSet(
        labels=np.stack([fine // 2, fine], axis=1),
        class_names=(("warm", "cool"), ("red", "green", "blue", "yellow")),
        level_names=("coarse", "fine"),
        images=images,
        source="tiny:test",
    )


@pytest.fixture(scope="module")
def tiny() -> ImageSet:
    return _tiny()


# ---------------------------------------------------------------------- banks
def test_extraction_writes_a_valid_bank(tiny: ImageSet, tmp_path: Path) -> None:
    bank = extract_features(tiny, train_epochs=1, cache_dir=tmp_path, **FAST)
    files = list(tmp_path.glob("tiny-resnet18-*.npz"))
    assert len(files) == 1
    loaded = FeatureBank.load(files[0])
    assert loaded.features.shape == (32, 512) and loaded.features.dtype == np.float16
    np.testing.assert_array_equal(loaded.features, bank.features)
    np.testing.assert_array_equal(loaded.labels, tiny.labels)
    assert loaded.class_names == tiny.class_names and loaded.level_names == ("coarse", "fine")
    assert loaded.summary()["query"] == 5 and loaded.summary()["database"] == 27  # round(32/6)
    meta = loaded.meta
    assert meta["backbone"] == "resnet18" and meta["epochs"] == 1 and meta["weights"] == "none"
    assert meta["seed"] == 0 and meta["source"] == "tiny:test" and meta["limit"] is None
    assert 0.0 <= meta["query_top1_fine"] <= 1.0
    assert "database images only" in meta["training"]
    assert files[0].name == features.cache_file_name(tiny, "resnet18", meta["cache_key"])


def test_same_inputs_reuse_the_cache(
    tiny: ImageSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = extract_features(tiny, train_epochs=1, cache_dir=tmp_path, limit=20, **FAST)
    built = []
    real_build = features.build_backbone

    def counting_build(*args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(args[0])
        return real_build(*args, **kwargs)

    monkeypatch.setattr(features, "build_backbone", counting_build)
    again = extract_features(tiny, train_epochs=1, cache_dir=tmp_path, limit=20, **FAST)
    assert built == []  # the backbone never ran
    np.testing.assert_array_equal(again.features, first.features)
    assert again.meta["cache_key"] == first.meta["cache_key"]
    # any changed input is a different entry: here the seed
    other = extract_features(tiny, train_epochs=1, cache_dir=tmp_path, limit=20, seed=1, **FAST)
    assert built == ["resnet18"] and other.meta["cache_key"] != first.meta["cache_key"]
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_out_file_is_a_cache_too(
    tiny: ImageSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "bank.npz"
    extract_features(tiny, out=out, limit=12, **FAST)
    monkeypatch.setattr(features, "build_backbone", _must_not_run)
    again = extract_features(tiny, out=out, limit=12, **FAST)
    assert again.meta["limit"] == 12 and len(again.meta["rows"]) == 12


def _must_not_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("the backbone ran although a cached bank existed")


# ---------------------------------------------------------------------- training isolation
@pytest.fixture
def trained(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every image row that reaches the optimiser (a spy on ``features.training_batches``)."""
    rows_seen: list[int] = []
    real = features.training_batches

    def recording(rows, batch_size, rng):  # type: ignore[no-untyped-def]
        for batch in real(rows, batch_size, rng):
            rows_seen.extend(batch.tolist())
            yield batch

    monkeypatch.setattr(features, "training_batches", recording)
    return rows_seen


@pytest.mark.parametrize("limit", [None, 20])
def test_query_images_are_never_trained_on(
    tiny: ImageSet, trained: list[int], limit: int | None
) -> None:
    bank = extract_features(tiny, train_epochs=2, limit=limit, **FAST)
    query = set(bank.indices("query").tolist())
    database = set(bank.indices("database").tolist())
    assert trained and query
    assert set(trained).isdisjoint(query)
    assert set(trained) <= database
    assert len(trained) == 2 * len(database)  # every database image, once per epoch


def test_given_split_decides_what_is_trained(tiny: ImageSet, trained: list[int]) -> None:
    split = np.zeros(len(tiny), np.int8)
    split[::4] = 1  # 8 queries, 2 per fine class
    bank = extract_features(tiny, train_epochs=1, split=split, **FAST)
    np.testing.assert_array_equal(bank.split, split)
    assert bank.meta["split"] == "given"
    assert set(trained) == set(np.flatnonzero(split == 0).tolist())


# ---------------------------------------------------------------------- weights
def _reference_features(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    model.fc = torch.nn.Identity()
    model.eval()
    with torch.no_grad():
        return model((x - mean) / std).numpy()


def test_local_weights_file(tiny: ImageSet, tmp_path: Path) -> None:
    from torchvision.models import resnet18

    torch.manual_seed(123)
    model = resnet18()
    path = tmp_path / "r18.pt"
    torch.save(model.state_dict(), path)
    bank = extract_features(tiny, weights=path, dtype="float32", **FAST)
    ref = _reference_features(model, tiny.images)
    np.testing.assert_allclose(bank.features, ref, rtol=1e-4, atol=1e-5)
    assert bank.meta["weights"].startswith("file-sha256:")


def test_trained_weights_round_trip(tiny: ImageSet, tmp_path: Path) -> None:
    weights = tmp_path / "trained.pt"
    trained = extract_features(tiny, train_epochs=1, save_weights=weights, dtype="float32", **FAST)
    state = torch.load(weights, weights_only=True)
    assert state["fc.weight"].shape == (4, 512)  # torchvision layout with the trained head
    reloaded = extract_features(tiny, weights=weights, dtype="float32", **FAST)
    np.testing.assert_allclose(reloaded.features, trained.features, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(reloaded.split, trained.split)


def test_cache_with_saved_weights(
    tiny: ImageSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "w.pt"
    kw = {"train_epochs": 1, "limit": 12, "cache_dir": tmp_path / "cache", "save_weights": weights}
    first = extract_features(tiny, **kw, **FAST)
    real_build = features.build_backbone
    monkeypatch.setattr(features, "build_backbone", _must_not_run)
    extract_features(tiny, **kw, **FAST)  # bank and the weights it wrote are both there: reused
    weights.write_bytes(b"not the weights that run wrote")
    monkeypatch.setattr(features, "build_backbone", real_build)
    with pytest.raises(OutputPathError, match="w.pt exists and is not a weights file"):
        extract_features(tiny, **kw, **FAST)  # not a torch.save file: kept without force
    assert weights.read_bytes() == b"not the weights that run wrote"
    again = extract_features(tiny, **kw, **FAST, force=True)  # recomputed, weights written again
    assert torch.load(weights, weights_only=True)["fc.weight"].shape == (4, 512)
    np.testing.assert_array_equal(again.features, first.features)


def test_weights_errors(tiny: ImageSet, tmp_path: Path) -> None:
    with pytest.raises(BackboneError, match="weights file missing: .*absent.pt"):
        extract_features(tiny, weights=tmp_path / "absent.pt", **FAST)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(256))
    with pytest.raises(BackboneError, match="cannot read weights file .*junk.pt: corrupted"):
        extract_features(tiny, weights=junk, **FAST)
    odd = tmp_path / "odd.pt"
    torch.save({"conv1.weight": torch.zeros(3)}, odd)
    with pytest.raises(BackboneError, match="does not fit backbone resnet18"):
        extract_features(tiny, weights=odd, **FAST)
    listed = tmp_path / "list.pt"
    torch.save([1, 2, 3], listed)
    with pytest.raises(BackboneError, match="does not hold a state dict of tensors"):
        extract_features(tiny, weights=listed, **FAST)


# ---------------------------------------------------------------------- determinism
def test_same_seed_same_features(tiny: ImageSet) -> None:
    a = extract_features(tiny, train_epochs=1, limit=16, seed=3, **FAST)
    b = extract_features(tiny, train_epochs=1, limit=16, seed=3, **FAST)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.split, b.split)
    assert a.meta["rows"] == b.meta["rows"]
    c = extract_features(tiny, train_epochs=1, limit=16, seed=4, **FAST)
    assert not np.array_equal(a.features, c.features)


def test_global_torch_state_is_left_alone(tiny: ImageSet) -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    extract_features(tiny, limit=8, **FAST)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())
    assert not torch.are_deterministic_algorithms_enabled()


# ---------------------------------------------------------------------- other inputs
def test_limit_keeps_class_shares(tiny: ImageSet) -> None:
    bank = extract_features(tiny, limit=16, **FAST)
    assert bank.n == 16
    assert np.bincount(bank.labels[:, 1]).tolist() == [4, 4, 4, 4]
    np.testing.assert_array_equal(bank.labels, tiny.labels[bank.meta["rows"]])


def test_multi_hot_training(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    hot = (rng.random((24, 21)) < 0.3).astype(np.uint8)
    hot[np.arange(24), np.arange(24) % 21] = 1
    s = ImageSet(
        labels=np.zeros((24, 0), np.int16),
        class_names=(),
        level_names=(),
        images=rng.integers(0, 256, size=(24, 32, 32, 3), dtype=np.uint8),
        multi_hot=hot,
        concept_names=tuple(f"c{i}" for i in range(21)),
        source="nus:t",
    )
    bank = extract_features(s, train_epochs=1, **FAST)
    np.testing.assert_array_equal(bank.multi_hot, hot)
    assert bank.n_levels == 0 and bank.concept_names[3] == "c3"
    assert "binary cross-entropy" in bank.meta["training"]
    assert 0.0 <= bank.meta["query_top1_hit"] <= 1.0


@pytest.mark.slow
def test_vgg_gives_fc7(tiny: ImageSet) -> None:
    bank = extract_features(tiny, backbone="vgg11", limit=8, **FAST)
    assert bank.dim == 4096 and bank.meta["layer"].startswith("fc7")
    assert np.all(bank.features >= 0)  # after fc7's ReLU


def test_image_size_upsamples(tiny: ImageSet) -> None:
    bank = extract_features(tiny, limit=8, image_size=64, **FAST)
    assert bank.meta["input"].startswith("64x64")


def test_argument_errors(tiny: ImageSet) -> None:
    with pytest.raises(FeatureError, match="unknown backbone 'resnet7'; expected one of resnet18"):
        extract_features(tiny, backbone="resnet7", **FAST)
    with pytest.raises(
        DatasetError, match=r"limit must be between 1 and the number of images \(32\), got 33"
    ):
        extract_features(tiny, limit=33, **FAST)
    with pytest.raises(FeatureError, match="train_epochs must be >= 0, got -1"):
        extract_features(tiny, train_epochs=-1, **FAST)
    with pytest.raises(FeatureError, match="batch_size must be >= 1"):
        extract_features(tiny, batch_size=0, progress=False)
    with pytest.raises(FeatureError, match="save_weights needs train_epochs > 0"):
        extract_features(tiny, save_weights="w.pt", **FAST)
    with pytest.raises(
        FeatureError, match=r"split must be 0/1 for each of the 32 images, got shape \(3,\)"
    ):
        extract_features(tiny, split=np.zeros(3, np.int8), **FAST)
    with pytest.raises(FeatureError, match="the split leaves no query images"):
        extract_features(tiny, split=np.zeros(32, np.int8), **FAST)
    with pytest.raises(FeatureError, match="unknown device 'gpu0'"):
        extract_features(tiny, device="gpu0", progress=False)
    with pytest.raises(FeatureError, match="dtype must be 'float16' or 'float32'"):
        extract_features(tiny, dtype="int8", **FAST)
    with pytest.raises(FeatureError, match="split: no bank at"):
        extract_features(tiny, split="no/such/bank.npz", **FAST)


# ---------------------------------------------------------------------- the command
def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = _tiny()
    np.savez(
        tmp_path / "c.npz",
        images=tiny.images,
        fine_labels=tiny.labels[:, 1],
        coarse_labels=tiny.labels[:, 0],
        fine_names=np.array(tiny.class_names[1]),
        coarse_names=np.array(tiny.class_names[0]),
    )
    out = tmp_path / "bank.npz"
    argv = ["features", "--source", "cifar100-npz", "--images", str(tmp_path / "c.npz"),
            "--epochs", "1", "--limit", "24", "--out", str(out), "--batch-size", "16",
            "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"feature bank: {out}" in printed and '"images": 24' in printed
    bank = FeatureBank.load(out)
    assert bank.n == 24 and bank.meta["epochs"] == 1 and bank.meta["limit"] == 24


def test_cli_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", "--source", "cifar10", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hashgym features: error: --images is required for --source cifar10")
    assert main(["features", "--images", str(tmp_path / "none.npz"), "--out",
                 str(tmp_path / "b.npz")]) == 2
    captured = capsys.readouterr()
    assert "no CIFAR-100 images at" in captured.err and captured.out == ""


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_cli_without_images_needs_the_data_folder(
    value: str | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if value is None:
        monkeypatch.delenv("HASHGYM_DATA", raising=False)
    else:
        monkeypatch.setenv("HASHGYM_DATA", value)
    assert main(["features", "--no-progress"]) == 2
    assert capsys.readouterr().err == ("hashgym features: error: --images is required (or set "
                                       "HASHGYM_DATA to the data folder)\n")


def test_cli_without_images_reads_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HASHGYM_DATA", str(tmp_path))
    assert main(["features", "--no-progress", "--out", str(tmp_path / "b.npz")]) == 2
    expected = tmp_path / "cifar100" / "cifar100.npz"
    assert f"no CIFAR-100 images at {expected}" in capsys.readouterr().err


# ---------------------------------------------------------------------- shared data
@pytest.mark.slow
def test_split_from_the_shared_bank(shared_data: Path) -> None:
    images = load_cifar100_npz(shared_data / "cifar100" / "cifar100.npz")
    shared = shared_data / "cifar100" / "cifar100_resnet18_features.npz"
    shared_split = FeatureBank.load(shared, mmap=True).split
    bank = extract_features(images, split=shared, limit=40, **FAST)
    rows = np.asarray(bank.meta["rows"])
    np.testing.assert_array_equal(bank.split, shared_split[rows])
    assert bank.meta["split"] == f"from bank {shared}"
    assert bank.n_classes == (20, 100)


def test_imagenet_weights_offline_error(tiny: ImageSet, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.models as tv_models

    real = tv_models.get_model

    def offline(name, weights=None, **kwargs):  # type: ignore[no-untyped-def]
        if weights is not None:
            raise OSError("Temporary failure in name resolution")
        return real(name, weights=None, **kwargs)

    monkeypatch.setattr(tv_models, "get_model", offline)
    with pytest.raises(
        BackboneError, match="cannot get ImageNet weights for resnet18 .*need internet"
    ):
        extract_features(tiny, weights="imagenet", **FAST)


def test_nuswide_files_end_to_end(tmp_path: Path) -> None:
    from PIL import Image

    from hashgym.datasets import load_nuswide_list

    rng = np.random.default_rng(9)
    lines = []
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
        hot = np.zeros(21, int)
        hot[[i % 21, (i * 7) % 21]] = 1
        lines.append(f"{i}.png " + " ".join(map(str, hot)))
    (tmp_path / "all.txt").write_text("\n".join(lines))
    s = load_nuswide_list(tmp_path / "all.txt", tmp_path)
    bank = extract_features(s, train_epochs=1, image_size=32, **FAST)
    assert bank.n == 12 and bank.multi_hot.shape == (12, 21) and bank.dim == 512
    assert bank.meta["input"].startswith("32x32") and bank.meta["source"].startswith(
        "nuswide-list:"
    )
    # the bank names its list and folder; image observations decode at the backbone's side
    import gymnasium as gym

    from hashgym.images import ImageError, bank_images, image_shape

    assert bank.meta["image_source"]["side"] == 32
    loaded = FeatureBank.load(bank.save(tmp_path / "bank.npz"))
    assert image_shape(loaded) == (32, 32, 3)
    np.testing.assert_array_equal(bank_images(loaded, [11, 0]), s.read(np.array([11, 0]), 32))
    env = gym.make("CentralHash-v0", bank=loaded, observation="image", n_bits=16)
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs["features"], s.read(np.array([info["index"]]), 32)[0])
    (tmp_path / "3.png").unlink()
    with pytest.raises(ImageError, match=r"image files cannot be read: image file missing: .*3.png"):
        bank_images(loaded, [3])


def test_a_bank_from_an_image_file_names_its_images(tmp_path: Path) -> None:
    """hashgym features on a CIFAR-style .npz: the bank records the file and the row of each of
    its images (a stratified subset here), so image observations show the right pixels."""
    from hashgym.images import bank_images, has_images

    rng = np.random.default_rng(0)
    fine = np.arange(16, dtype=np.int16) % 4
    images = rng.integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "c.npz", images=images, fine_labels=fine,
             coarse_labels=(fine // 2).astype(np.int16), fine_names=np.array(["a", "b", "c", "d"]),
             coarse_names=np.array(["x", "y"]))
    bank = extract_features(load_cifar100_npz(tmp_path / "c.npz"), limit=12, **FAST)
    assert has_images(bank)
    np.testing.assert_array_equal(bank.image_index, bank.meta["rows"])
    np.testing.assert_array_equal(bank_images(bank, np.arange(bank.n)), images[bank.meta["rows"]])


def test_a_split_bank_with_a_training_subset_trains_on_it_only(
    tiny: ImageSet, trained: list[int]
) -> None:
    """A split taken from a bank with a training subset (the csq protocol's 5,000 images):
    only those images reach the optimiser, and the new bank keeps the subset."""
    n = len(tiny)
    split = np.zeros(n, dtype=np.int8)
    split[::4] = 1  # queries
    train = (split == 0) & (np.arange(n) % 2 == 1)  # half the database
    source = FeatureBank(features=np.zeros((n, 2), np.float32), labels=tiny.labels,
                         class_names=tiny.class_names, split=split, train=train)
    bank = extract_features(tiny, split=source, train_epochs=1, **FAST)
    assert trained and set(trained) <= set(np.flatnonzero(train).tolist())
    np.testing.assert_array_equal(bank.train, train)
    assert "with its training subset" in bank.meta["split"]
    assert f"{int(train.sum())} training images only" in bank.meta["training"]
