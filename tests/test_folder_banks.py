"""Your own images end to end (issue 31): a class-folder tree becomes a bank (hashgym.folders),
and a trained model searches its index with a picture (hashgym search MODEL --image)."""

from __future__ import annotations

import re
import runpy
import sys
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from PIL import Image

from hashgym.agents.encode import EncodeError, encode, encode_features
from hashgym.agents.saving import save_model
from hashgym.agents.train import train
from hashgym.bank import QUERY, FeatureBank
from hashgym.cli import main
from hashgym.datasets import read_image_files
from hashgym.embed import EmbedError, embed_pictures, picture_files
from hashgym.features import extract_features
from hashgym.folders import FolderLayoutError, load_image_folder
from hashgym.images import ImageError, bank_images, image_shape

FAST = {"batch_size": 8, "progress": False, "device": "cpu", "image_size": 16}
COLOURS = {"warm/red": (200, 40, 40), "warm/yellow": (200, 200, 40),
           "cool/green": (40, 200, 40), "cool/blue": (40, 40, 200)}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _png(path: Path, colour: tuple[int, int, int], seed: int, size: tuple[int, int]) -> None:
    """A small noisy PNG of ``colour`` (``size`` = width, height); distinct for each seed."""
    rng = np.random.default_rng(seed)
    pixels = np.array(colour)[None, None, :] + rng.integers(-40, 40, (size[1], size[0], 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)


def _tree(root: Path, two_levels: bool = True, per_class: int = 6) -> Path:
    """4 classes (under 2 super-classes when ``two_levels``) of PNGs of 10-16 pixels."""
    for c, (name, colour) in enumerate(COLOURS.items()):
        folder = name if two_levels else name.split("/")[1]
        for i in range(per_class):
            _png(root / folder / f"{i}.png", colour, 100 * c + i, (10 + i, 16 - i))
    return root


# ---------------------------------------------------------------------- folder banks
def test_two_level_folders_give_hierarchical_labels(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "photos")
    (tree / ".DS_Store").write_bytes(b"\0junk")  # hidden names are left out
    (tree / "warm" / "red" / "._0.png").write_bytes(b"junk")
    images = load_image_folder(tree)
    assert images.level_names == ("super-class", "class")
    assert images.class_names == (("cool", "warm"), ("blue", "green", "red", "yellow"))
    assert images.paths[:2] == ("cool/blue/0.png", "cool/blue/1.png") and len(images) == 24
    assert images.paths == tuple(sorted(images.paths))
    for path, (coarse, fine) in zip(images.paths, images.labels, strict=True):
        sup, cls, _ = path.split("/")
        assert (images.class_names[0][coarse], images.class_names[1][fine]) == (sup, cls)
    assert images.split is None  # drawn at extraction

    bank = extract_features(images, train_epochs=1, query_fraction=0.5, **FAST)
    assert bank.n_levels == 2 and bank.n_classes == (2, 4) and bank.dim == 512
    # --query-fraction: seeded, stratified by the finest class
    q = bank.split == QUERY
    assert np.bincount(bank.labels[q, 1], minlength=4).tolist() == [3, 3, 3, 3]
    source = bank.meta["image_source"]
    assert source["kind"] == "folder" and source["files"] == list(images.paths)
    assert source["root"] == str(tree.resolve()) and source["side"] == 16
    assert "image_source" not in bank.meta.get("source_meta", {})
    # image observations and hashgym show read the files, at the backbone's side
    loaded = FeatureBank.load(bank.save(tmp_path / "bank.npz"))
    assert image_shape(loaded) == (16, 16, 3)
    np.testing.assert_array_equal(bank_images(loaded, [5, 17]),
                                  read_image_files([tree / images.paths[i] for i in (5, 17)], 16))
    env = gym.make("HierHash-v0", bank=loaded, n_bits=8)
    obs, _ = env.reset(seed=0)
    assert obs["features"].shape == (512,)
    env = gym.make("CentralHash-v0", bank=loaded, observation="image", n_bits=8)
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs["features"], bank_images(loaded, [info["index"]])[0])


def test_one_level_folders_through_the_cli_with_a_split_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = _tree(tmp_path / "photos", two_levels=False)
    (tree / "red" / "notes.txt").write_text("not a picture")
    split = tmp_path / "queries.txt"
    split.write_text("# the queries\nred/0.png\n\n./blue/3.png\ngreen/5.png\n")
    out = tmp_path / "bank.npz"
    argv = ["features", "--source", "folder", "--images", str(tree), "--split-file", str(split),
            "--out", str(out), "--batch-size", "8", "--image-size", "16", "--device", "cpu",
            "--no-progress"]
    assert main(argv) == 2  # the text file is refused by default
    assert "1 unreadable file(s)" in capsys.readouterr().err
    assert main([*argv, "--skip-unreadable"]) == 0
    printed = capsys.readouterr().out
    assert '"files": "<24 paths>"' in printed and '"unreadable_skipped": 1' in printed
    bank = FeatureBank.load(out)
    assert bank.level_names == ("class",) and bank.class_names == (("blue", "green", "red",
                                                                    "yellow"),)
    files = bank.meta["image_source"]["files"]
    assert sorted(files[i] for i in bank.indices("query")) == ["blue/3.png", "green/5.png",
                                                                "red/0.png"]
    assert "red/notes.txt" not in files and bank.meta["split"] == "source"


def test_a_class_name_under_two_super_classes_names_two_classes(tmp_path: Path) -> None:
    for i, sup in enumerate(("animals", "plants", "animals")):
        cls = ("other", "other", "cat")[i]
        for j in range(2):
            _png(tmp_path / sup / cls / f"{j}.png", (90, 90, 90), 10 * i + j, (8, 8))
    images = load_image_folder(tmp_path)
    assert images.class_names == (("animals", "plants"), ("cat", "animals/other", "plants/other"))
    assert images.labels[:, 0].tolist() == [0, 0, 0, 0, 1, 1]
    assert images.labels[:, 1].tolist() == [0, 0, 1, 1, 2, 2]


def _bad(build: Callable[[Path], None], **kwargs: object) -> Callable[[Path], object]:
    def case(root: Path) -> object:
        build(root)
        return load_image_folder(root / "photos", **kwargs)  # type: ignore[arg-type]
    return case


def _two_classes(root: Path) -> None:
    _png(root / "photos" / "a" / "0.png", (10, 10, 10), 0, (8, 8))
    _png(root / "photos" / "b" / "0.png", (10, 10, 10), 1, (8, 8))


def _with(extra: Callable[[Path], None]) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        _two_classes(root)
        extra(root / "photos")
    return build


def _split(text: str) -> Callable[[Path], object]:
    def case(root: Path) -> object:
        _two_classes(root)
        (root / "split.txt").write_text(text)
        return load_image_folder(root / "photos", split_file=root / "split.txt")
    return case


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True)


BAD_LAYOUTS = [
    ("missing folder", lambda root: load_image_folder(root / "nowhere"), r"no image folder at"),
    ("empty folder", _bad(lambda r: _mkdir(r / "photos")), r"the image folder .* is empty"),
    ("empty class folder", _bad(_with(lambda p: _mkdir(p / "c"))),
     r"empty folder\(s\) in .*: c/; every class folder needs at least one image"),
    ("empty class under a super-class", _bad(_with(lambda p: _mkdir(p / "s" / "c"))),
     r"empty folder\(s\) in .*: s/c/"),
    ("files directly in the folder",
     _bad(_with(lambda p: _png(p / "loose.png", (1, 2, 3), 5, (8, 8)))),
     r"mixed depths in .*: files outside class folders \(loose.png\)"),
    ("files beside class folders",
     _bad(_with(lambda p: _png(p / "a" / "sub" / "0.png", (1, 2, 3), 5, (8, 8)))),
     r"mixed depths in .*: files outside class folders \(a/0.png\)"),
    ("class folders at two depths",
     _bad(_with(lambda p: _png(p / "s" / "c" / "0.png", (1, 2, 3), 5, (8, 8)))),
     r"mixed depths in .*: class folders at depth 1 \(a/\) and 2 \(s/c/\)"),
    ("too deep",
     _bad(lambda r: _png(r / "photos" / "s" / "c" / "d" / "0.png", (1, 2, 3), 5, (8, 8))),
     r"folders too deep in .*: s/c/d/; images go in"),
    ("unreadable file", _bad(_with(lambda p: (p / "a" / "broken.png").write_bytes(b"\x89PNG"))),
     r"1 unreadable file\(s\) in .*: a/broken.png; remove them, or skip them"),
    ("every file of a class unreadable, skipped",
     _bad(_with(lambda p: (p / "c" / "x.jpg").parent.mkdir() or (p / "c" / "x.jpg").write_text(
         "text")), skip_unreadable=True),
     r"empty folder\(s\) in .*: c/ \(all their files are unreadable\)"),
    ("duplicate files",
     _bad(_with(lambda p: (p / "b" / "copy.png").write_bytes((p / "a" / "0.png").read_bytes()))),
     r"duplicate files \(the same bytes\) in .*: a/0.png = b/copy.png"),
    ("split file naming no image", _split("a/0.png\nc/9.png\n"),
     r"split.txt:2: c/9.png is not an image of the folder"),
    ("split file naming an image twice", _split("a/0.png\na/0.png\n"),
     r"split.txt:2: a/0.png is listed twice"),
    ("missing split file",
     lambda root: _two_classes(root) or load_image_folder(root / "photos", split_file=root / "s"),
     r"no split file at"),
]


@pytest.mark.parametrize(("build", "message"), [row[1:] for row in BAD_LAYOUTS],
                         ids=[row[0] for row in BAD_LAYOUTS])
def test_bad_layouts_are_named(tmp_path: Path, build: Callable[[Path], object],
                               message: str) -> None:
    with pytest.raises(FolderLayoutError, match=message):
        build(tmp_path)


def test_cli_folder_options_need_the_folder_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["features", "--images", str(tmp_path), "--split-file", "q.txt",
                 "--out", str(tmp_path / "b.npz")]) == 2
    assert "--split-file and --skip-unreadable are options of --source folder" in \
        capsys.readouterr().err


def test_a_folder_source_needs_a_list_of_files(tmp_path: Path) -> None:
    bank = FeatureBank(features=np.zeros((2, 2), np.float32), labels=[0, 1],
                       class_names=(("a", "b"),), split=[0, 1], image_index=[0, 1],
                       meta={"image_source": {"kind": "folder", "root": str(tmp_path),
                                              "files": "a/0.png"}})
    with pytest.raises(ImageError, match="'files' must be a list of paths relative to"):
        bank_images(bank, [0])


# ---------------------------------------------------------------------- search by picture
@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A folder bank with saved backbone weights, a DQN over it (random weights, so that codes
    differ between images), its codes of every image, and their index."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("search")
    tree = _tree(root / "photos")
    bank_path = root / "bank.npz"
    assert main(["features", "--source", "folder", "--images", str(tree), "--epochs", "1",
                 "--lr", "0.01", "--save-weights", str(root / "backbone.pt"), "--out", str(bank_path),
                 "--batch-size", "8", "--image-size", "16", "--device", "cpu",
                 "--no-progress"]) == 0
    model = train("dqn", "HierHash-v0", {"bank": str(bank_path), "n_bits": 16},
                  total_timesteps=64, num_envs=8, levels=[1],
                  algo_kwargs={"learning_starts": 10_000}).model
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.policy.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    model_path = save_model(model, root / "model.zip", model.hashgym_info)
    assert main(["encode", str(model_path), "--out", str(root / "all.npz")]) == 0
    assert main(["index", "build", str(root / "all.npz"), "--out", str(root / "index.npz")]) == 0
    return {"root": root, "tree": tree, "bank": bank_path, "model": model_path,
            "codes": root / "all.npz", "index": root / "index.npz"}


def _hits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as hits:
        return hits["ids"], hits["distances"]


def test_search_by_picture_equals_search_by_its_code(searched: dict[str, Path]) -> None:
    root = searched["root"]
    bank = FeatureBank.load(searched["bank"])
    files = bank.meta["image_source"]["files"]
    codes = np.load(searched["codes"])["codes"]
    # two images the model tells apart, so that their searches give different answers
    other = int(np.flatnonzero((codes != codes[3]).any(axis=1))[0])
    answers = []
    for row in (3, other):
        picture = searched["tree"] / files[row]
        # the picture's features are the bank's own for that image (float16 both)
        np.testing.assert_allclose(embed_pictures(bank, [picture]).astype(np.float32),
                                   bank.features[[row]].astype(np.float32), atol=2e-3)
        np.save(root / "q.npy", codes[[row]])
        assert main(["search", str(searched["index"]), str(root / "q.npy"), "--k", "6",
                     "--out", str(root / "by_code.npz")]) == 0
        assert main(["search", str(searched["model"]), "--image", str(picture), "--index",
                     str(searched["index"]), "--k", "6", "--out",
                     str(root / "by_picture.npz")]) == 0
        for got, want in zip(_hits(root / "by_picture.npz"), _hits(root / "by_code.npz"),
                             strict=True):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.load(root / "by_picture.npz")["codes"], codes[[row]])
        answers.append(_hits(root / "by_picture.npz")[0])
    assert not np.array_equal(*answers)


def test_search_by_a_folder_of_pictures_draws_the_grid(
    searched: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, folder = searched["root"], searched["tree"] / "warm" / "red"
    grid = root / "grid.png"
    assert main(["search", str(searched["model"]), "--image", str(folder), "--index",
                 str(searched["codes"]), "--k", "4", "--show", str(grid)]) == 0
    printed = capsys.readouterr().out
    assert "6 picture(s) against 24 codes of 16 bits, k = 4; hits as bank rows" in printed
    assert f"wrote {grid}" in printed
    with Image.open(grid) as image:  # 6 rows of a picture and its 4 neighbours
        assert image.size == (450, 690)
    # the pictures' codes through the Python API are those of encode() on their bank rows
    bank = FeatureBank.load(searched["bank"])
    rows = [bank.meta["image_source"]["files"].index(f"warm/red/{i}.png") for i in range(6)]
    features = embed_pictures(bank, picture_files([folder]))
    np.testing.assert_array_equal(encode_features(searched["model"], features),
                                  encode(searched["model"], bank, indices=rows))


@pytest.mark.parametrize(("argv", "message"), [
    (["{model}", "--image", "{picture}", "--k", "3"], r"search by picture needs --index INDEX"),
    (["{model}", "{index}", "--image", "{picture}", "--index", "{index}", "--k", "3"],
     r"with --image, give the index as --index INDEX, not as a second argument"),
    (["{model}", "--image", "{picture}", "--index", "{index}", "--k", "3", "--weights",
      "{root}/bank.npz"],
     r"the weights file .*bank.npz is not the backbone the bank's features came from"),
    (["{model}", "--image", "{picture}", "--index", "{root}/q.npy", "--k", "3"],
     r"cannot read code index file|not a code index"),
    (["{model}", "--image", "{root}/none.png", "--index", "{index}", "--k", "3"],
     r"no picture at .*none.png"),
    (["{model}", "--image", "{picture}", "--index", "{index}", "--k", "3", "--show", "g.gif"],
     r"expected a number of queries to print or a .png file to draw, got 'g.gif'"),
])
def test_search_by_picture_errors(searched: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                  argv: list[str], message: str) -> None:
    values = {"index": str(searched["index"]), "root": str(searched["root"]),
              "model": str(searched["model"]),
              "picture": str(searched["tree"] / "cool" / "blue" / "0.png")}
    np.save(searched["root"] / "q.npy", np.zeros((1, 16), np.uint8))
    if "g.gif" in argv:  # argparse's own error
        with pytest.raises(SystemExit):
            main(["search", *[a.format(**values) for a in argv]])
    else:
        assert main(["search", *[a.format(**values) for a in argv]]) == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize(("argv", "message"), [
    (["search", "i.npz", "q.npz", "--k", "3", "--index", "x.npz"],
     "--index goes with --image"),
    (["search", "i.npz", "--k", "3"], "give the query codes after the index"),
    (["search", "i.npz", "q.npz", "--k", "3", "--show", "g.png"],
     "--show g.png: drawing needs pictures"),
])
def test_search_by_code_refuses_picture_options(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_bank_without_a_rebuildable_backbone(searched: dict[str, Path]) -> None:
    bank = FeatureBank.load(searched["bank"])
    picture = searched["tree"] / "cool" / "blue" / "0.png"
    random_init = bank.replace(meta={**bank.meta, "epochs": 0, "weights": "none",
                                     "saved_weights": None, "saved_weights_sha256": None})
    with pytest.raises(EmbedError, match="does not record a backbone that can be rebuilt"):
        embed_pictures(random_init, [picture])
    moved = bank.replace(meta={**bank.meta, "saved_weights": str(searched["root"] / "gone.pt")})
    with pytest.raises(EmbedError, match=r"weights file missing: .*gone.pt .*pass --weights"):
        embed_pictures(moved, [picture])
    with pytest.raises(EmbedError, match="does not record its backbone's input size"):
        embed_pictures(bank.replace(meta={**bank.meta, "input": None}), [picture])
    with pytest.raises(EncodeError, match=r"features must be \[n >= 1, 512\]"):
        encode_features(searched["model"], np.zeros((2, 7), np.float32))


def test_the_readme_example_writes_a_two_level_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/cifar_folder.py on a small CIFAR-style file: class folders that load as a
    two-level image set, and one new picture per class that is none of them."""
    rng = np.random.default_rng(0)
    fine = np.repeat(np.arange(4), 5).astype(np.int16)
    images = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "c.npz", images=images, fine_labels=fine,
             coarse_labels=(fine // 2).astype(np.int16), fine_names=np.array(["a", "b", "c", "d"]),
             coarse_names=np.array(["x", "y"]))
    script = Path(__file__).resolve().parents[1] / "examples" / "cifar_folder.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--images", str(tmp_path / "c.npz"),
                                      "--out", str(tmp_path / "photos"), "--new",
                                      str(tmp_path / "new"), "--classes", "d", "c",
                                      "--per-class", "3"])
    runpy.run_path(str(script), run_name="__main__")
    assert "wrote 6 images to" in capsys.readouterr().out
    folder = load_image_folder(tmp_path / "photos")
    assert folder.class_names == (("y",), ("c", "d")) and len(folder) == 6
    written = {Path(p).read_bytes() for p in (tmp_path / "photos").rglob("*.png")}
    new = sorted(p.name for p in (tmp_path / "new").glob("*.png"))
    assert new == ["c.png", "d.png"]
    assert not written & {p.read_bytes() for p in (tmp_path / "new").glob("*.png")}
