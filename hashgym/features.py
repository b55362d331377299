"""CNN feature extraction: an :class:`~hashgym.datasets.ImageSet` in, a cached feature bank out.

The hashing methods hashgym compares all start from fixed CNN features (``docs/methods.md``,
"Feature banks"): DRLHIH learns its image features with a ResNet, and SCIHCGRL's state
``s = (fv, hv)`` takes ``fv`` from a fully connected layer of VGG-19 (its Fig. 3; read here
as fc7, the last layer before the classifier). :func:`extract_features` computes such a bank
with a torchvision backbone:

* **Layer.** ResNet-family backbones give the penultimate layer (after global average
  pooling: 512-d for resnet18/34, 2048-d for resnet50 and deeper). VGG backbones give fc7
  (4096-d, after its ReLU).
* **Weights.** ``weights="imagenet"`` uses torchvision's default ImageNet weights (downloaded
  once; needs internet). A path loads a state dict with ``torch.load(..., weights_only=True)``
  (the classifier head in it is ignored). ``None`` starts from a seeded random initialisation.
* **Training.** ``train_epochs > 0`` trains (or fine-tunes) the backbone before extraction, on
  the database images only, never on a query image: cross-entropy with label smoothing 0.1
  on the finest level (binary cross-entropy on multi-hot labels), SGD with Nesterov momentum,
  a one-cycle learning rate, random crops (padding of 1/8 of the side, 4 pixels at 32×32) and
  horizontal flips. This is what works on a machine without internet; the shared CIFAR-100
  bank was made the same way with 40 epochs.
* **Input size.** Images are fed at their own size unless ``image_size`` says otherwise:
  CIFAR's 32×32 images go through the standard ImageNet stem unchanged, as in the shared bank
  (cheap; the final feature map is 1×1). ``image_size=224`` upsamples them instead, which suits
  ImageNet weights better at ~49× the compute. Image files (NUS-WIDE, folders) default to 224.
  Pixels are normalised with the ImageNet channel means and deviations in every case.
* **Determinism.** Everything is seeded (initialisation, sampling, augmentation); on CPU two
  runs with the same inputs give identical features. On CUDA deterministic algorithms are
  requested where torch has them (best effort).
* **Cache.** The bank's file name holds a hash of every input: the images' content, labels and
  split, backbone, weights identity (a file's SHA-256), epochs, seed, limit, input size and
  training settings. With ``cache_dir`` (or ``out``) set, a second run with the same inputs
  loads the saved bank instead of recomputing it.

``torch`` and ``torchvision`` are imported inside the functions, so importing this module (as
the ``hashgym`` CLI does at start-up) stays cheap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hashgym.atomic import atomic_write, check_output
from hashgym.backbones import (
    BACKBONES,
    RESNETS,
    build_backbone,
    head_prefix,
    to_tensor,
    weights_identity,
)
from hashgym.bank import DATABASE, QUERY, BankError, FeatureBank
from hashgym.datasets import (
    ImageSet,
    stratified_sample,
    stratified_split,
)
from hashgym.devices import DeviceError, check_device
from hashgym.errors import DataError
from hashgym.identity import digest_of, sha256_bytes, sha256_file

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "FeatureError",
    "augment_batch",
    "cache_file_name",
    "check_outputs",
    "default_cache_dir",
    "extract_features",
    "training_batches",
]

logger = logging.getLogger(__name__)

#: Bumped whenever the extraction recipe changes, so old cached banks are not reused.
RECIPE_VERSION = 1

_LABEL_SMOOTHING = 0.1
_MOMENTUM = 0.9
_WEIGHT_DECAY = 5e-4


#: This module's name for :class:`~hashgym.errors.DataError` (an alias).
FeatureError = DataError


def default_cache_dir() -> Path:
    """Where the CLI keeps feature banks: ``$HASHGYM_CACHE`` or ``~/.cache/hashgym/features``."""
    env = os.environ.get("HASHGYM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hashgym" / "features"


def augment_batch(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Random crop after zero padding of ``side // 8`` pixels, and random horizontal flips.

    :param x: images ``[n, C, H, W]``.
    :param gen: the random generator (``None``: torch's global one).
    """
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    pad = max(1, h // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen).tolist()
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen).tolist()
    flip = (torch.rand(n, generator=gen) < 0.5).tolist()
    out = torch.empty_like(x)
    for i in range(n):
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def _n_batches(n: int, batch_size: int) -> int:
    """Number of batches :func:`training_batches` yields for ``n >= 2`` rows."""
    return max(1, n // batch_size + (1 if n % batch_size >= 2 else 0))


def training_batches(
    rows: np.ndarray, batch_size: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """One shuffled epoch over the training ``rows``, in batches.

    A lone last row joins the batch before it, since batch normalisation cannot train on a
    batch of one. This is the only way images reach the optimiser, which lets the tests check
    that no query image is ever trained on.
    """
    order = rng.permutation(rows)
    bounds = [min(i * batch_size, len(order)) for i in range(_n_batches(len(order), batch_size))]
    bounds.append(len(order))
    for start, stop in itertools.pairwise(bounds):
        yield order[start:stop]


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch and request deterministic algorithms; restore the caller's state afterwards."""
    import torch

    devices = [device.index or 0] if device.type == "cuda" else []
    if devices:  # cuBLAS needs this set before its first use to be deterministic
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    prev = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = prev[2], prev[3]


# ---------------------------------------------------------------------- training
@dataclasses.dataclass
class _Job:
    """Everything one extraction run needs, resolved and validated."""

    images: ImageSet
    backbone: str
    weights: str | Path | None
    epochs: int
    seed: int
    batch_size: int
    size: int
    lr: float
    device: torch.device
    progress: bool
    #: the images the backbone trains on: the database's, or a bank's training subset of it
    train: np.ndarray | None = None


def _targets(images: ImageSet) -> tuple[np.ndarray, int, bool]:
    """Training targets: finest-level classes, or multi-hot concepts; (targets, outputs, multi)."""
    if images.labels.shape[1]:
        return images.labels[:, -1].astype(np.int64), len(images.class_names[-1]), False
    assert images.multi_hot is not None
    return images.multi_hot.astype(np.float32), int(images.multi_hot.shape[1]), True


def _train(job: _Job, body: torch.nn.Module, head: torch.nn.Linear) -> None:
    """Train ``body`` + ``head`` on the database images of ``job.images`` only (only on
    ``job.train`` of them when the split came with a training subset)."""
    import torch
    from tqdm.auto import tqdm

    assert job.images.split is not None
    chosen = job.images.split == DATABASE if job.train is None else job.train
    rows = np.flatnonzero(chosen)
    if len(rows) < 2:
        what = "database" if job.train is None else "training"
        raise FeatureError(f"training needs at least 2 {what} images, got {len(rows)}")
    targets, _, multi = _targets(job.images)
    loss_fn: torch.nn.Module = (
        torch.nn.BCEWithLogitsLoss()
        if multi
        else torch.nn.CrossEntropyLoss(label_smoothing=_LABEL_SMOOTHING)
    )
    params = [*body.parameters(), *head.parameters()]
    opt = torch.optim.SGD(
        params, lr=job.lr, momentum=_MOMENTUM, nesterov=True, weight_decay=_WEIGHT_DECAY
    )
    rng = np.random.default_rng([job.seed, 3])
    steps = job.epochs * _n_batches(len(rows), job.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=job.lr, total_steps=max(1, steps))
    gen = torch.Generator().manual_seed(job.seed)
    body.train()
    head.train()
    bar = tqdm(total=steps, desc=f"training {job.backbone}", unit="batch", disable=not job.progress)
    try:
        for epoch in range(job.epochs):
            seen, total_loss = 0, 0.0
            for batch in training_batches(rows, job.batch_size, rng):
                x = augment_batch(
                    to_tensor(job.images.read(batch, job.size), job.size, job.device), gen
                )
                y = torch.from_numpy(targets[batch]).to(job.device)
                loss = loss_fn(head(body(x)), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                seen += len(batch)
                total_loss += loss.item() * len(batch)
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{total_loss / seen:.3f}")
            logger.info(
                "epoch %d/%d: training loss %.4f", epoch + 1, job.epochs, total_loss / max(seen, 1)
            )
    finally:
        bar.close()


def _forward_all(
    job: _Job, body: torch.nn.Module, head: torch.nn.Linear
) -> tuple[np.ndarray, np.ndarray]:
    """Features and head logits of every image, in order (evaluation mode, no gradients)."""
    import torch
    from tqdm.auto import tqdm

    body.eval()
    head.eval()
    n = len(job.images)
    feats, logits = [], []
    with torch.no_grad():
        for start in tqdm(
            range(0, n, job.batch_size),
            desc=f"extracting {job.backbone}",
            unit="batch",
            disable=not job.progress,
        ):
            rows = np.arange(start, min(start + job.batch_size, n))
            f = body(to_tensor(job.images.read(rows, job.size), job.size, job.device))
            feats.append(f.float().cpu().numpy())
            logits.append(head(f).float().cpu().numpy())
    return np.concatenate(feats), np.concatenate(logits)


def _query_top1(images: ImageSet, logits: np.ndarray) -> tuple[str, float]:
    """The trained backbone's top-1 on the query images (for multi-hot: top concept is true)."""
    assert images.split is not None
    q = images.split == QUERY
    pred = logits[q].argmax(axis=1)
    if images.labels.shape[1]:
        level = images.level_names[-1]
        return f"query_top1_{level}", float(np.mean(pred == images.labels[q, -1]))
    assert images.multi_hot is not None
    return "query_top1_hit", float(np.mean(images.multi_hot[q][np.arange(len(pred)), pred] == 1))


# ---------------------------------------------------------------------- the public function
def _resolve_split(
    images: ImageSet,
    split: str | os.PathLike[str] | np.ndarray | FeatureBank | None,
    query_fraction: float,
    seed: int,
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """The split over the whole image set (``None``: drawn after limiting), the training subset
    a bank's split comes with (``None``: the whole database), and how the split was made."""
    train = None
    if split is None:
        if images.split is not None:
            return images.split, None, "source"
        return None, None, f"seeded stratified, query_fraction={query_fraction:.6g}"
    if isinstance(split, (str, os.PathLike)):
        try:
            bank = FeatureBank.load(split)
        except BankError as exc:
            raise FeatureError(f"split: {exc}") from exc
        how = f"from bank {split}"
        split = bank
    else:
        how = "given"
    if isinstance(split, FeatureBank):
        how = how if how != "given" else "from bank"
        if split.train is not None and split.n == len(images):
            train = np.asarray(split.train, dtype=bool)
            how += ", with its training subset"
        split = split.split
    arr = np.asarray(split)
    if arr.shape != (len(images),) or not np.isin(arr, (DATABASE, QUERY)).all():
        raise FeatureError(
            f"split must be 0/1 for each of the {len(images)} images, got shape {arr.shape}"
        )
    return arr.astype(np.int8), train, how


def _cache_key(job: _Job, limit: int | None, weights_id: str, dtype: str) -> str:
    """SHA-256 over every input of the bank (the split is part of the image content hash)."""
    record = {
        "recipe": RECIPE_VERSION,
        "images": job.images.content_hash(),
        "backbone": job.backbone,
        "weights": weights_id,
        "epochs": job.epochs,
        "seed": job.seed,
        "limit": limit,
        "size": job.size,
        "dtype": dtype,
        # only training depends on these
        "train": (None if job.train is None or not job.epochs else
                  sha256_bytes(np.packbits(job.train).tobytes())),
        "lr": job.lr if job.epochs else None,
        "batch_size": job.batch_size if job.epochs else None,
    }
    return digest_of(record)


def cache_file_name(image_set: ImageSet, backbone: str, key: str) -> str:
    """File name of a cached bank: source kind, backbone and the first 16 hex digits of the key."""
    kind = re.sub(r"[^A-Za-z0-9_-]+", "-", image_set.source.split(":")[0] or "images")
    return f"{kind}-{backbone}-{key[:16]}.npz"


def _try_cached(path: Path, key: str, save_weights: Path | None) -> FeatureBank | None:
    """The bank at ``path`` if it was made from the same inputs (and, when trained weights are
    wanted, the weights file beside it is the one that run wrote)."""
    if not path.is_file():
        return None
    try:
        bank = FeatureBank.load(path)
    except BankError as exc:
        logger.warning("ignoring unreadable cached bank %s: %s", path, exc)
        return None
    if bank.meta.get("cache_key") != key:
        return None
    if save_weights is not None and (
        not save_weights.is_file()
        or bank.meta.get("saved_weights_sha256") != sha256_file(save_weights)
    ):
        return None
    logger.info("reusing cached feature bank %s (same inputs)", path)
    return bank


def check_outputs(out: str | os.PathLike[str] | None,
                  save_weights: str | os.PathLike[str] | None,
                  inputs: Iterable[str | os.PathLike[str] | None], force: bool = False) -> None:
    """Check the files :func:`extract_features` writes before anything is read or computed: the
    bank ``out`` (``.npz``) and the trained weights ``save_weights`` (``.pt`` / ``.pth``) are
    never one of ``inputs`` nor each other, and replace an existing file of another kind only
    with ``force`` (:func:`hashgym.atomic.check_output`).

    :raises OutputPathError: naming the option (``--out``, ``--save-weights``) and the problem.
    """
    inputs = list(inputs)
    if out is not None:
        check_output(out, suffix=".npz", kind="bank", keys=("features", "labels", "split"),
                     inputs=[*inputs, save_weights], force=force)
    if save_weights is not None:
        check_output(save_weights, suffix=(".pt", ".pth"), kind="weights", keys=(),
                     inputs=[*inputs, out], force=force, flag="--save-weights")


def extract_features(
    image_set: ImageSet,
    backbone: str = "resnet18",
    weights: str | os.PathLike[str] | None = None,
    train_epochs: int = 0,
    split: str | os.PathLike[str] | np.ndarray | FeatureBank | None = None,
    seed: int = 0,
    batch_size: int = 256,
    device: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    progress: bool = True,
    *,
    out: str | os.PathLike[str] | None = None,
    image_size: int | None = None,
    lr: float | None = None,
    query_fraction: float = 1 / 6,
    dtype: str = "float16",
    save_weights: str | os.PathLike[str] | None = None,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    force: bool = False,
) -> FeatureBank:
    """Compute (or load from the cache) the feature bank of ``image_set``.

    See the module docstring for the recipe. The steps: resolve the split over the whole set;
    keep ``limit`` images stratified by class and split (seeded); draw a seeded stratified
    split if the set has none; train the backbone for ``train_epochs`` epochs on the database
    images; extract features of every kept image; save the bank.

    :param image_set: the images (see :mod:`hashgym.datasets`).
    :param backbone: a torchvision model name from :data:`BACKBONES`.
    :param weights: ``None`` (seeded random init), ``"imagenet"`` (torchvision's default
        ImageNet weights, needs internet once) or the path of a state dict.
    :param train_epochs: epochs of training on the database images before extraction (0: none).
    :param split: ``None`` (the set's own split, else a seeded stratified one), a 0/1 array over
        the whole set (1 = query), or a :class:`FeatureBank` / bank path to take the split from
        (e.g. the shared CIFAR-100 bank, to reproduce its split). A bank with a training subset
        (``hashgym bank split cifar100 --protocol csq``: 5,000 training images) brings it
        along: the backbone trains on those images only, and the new bank keeps the subset.
    :param seed: seed of sampling, splitting, initialisation, shuffling and augmentation.
    :param batch_size: images per forward pass (and per training step).
    :param device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks CUDA when present.
    :param cache_dir: folder of cached banks; the file name holds a hash of all inputs, and an
        existing bank with the same inputs is loaded instead of recomputed.
    :param limit: keep only this many images (stratified, seeded); ``None`` keeps all.
    :param progress: show tqdm progress bars.
    :param out: also write the bank here (reused as a cache too when its inputs match).
    :param image_size: side length fed to the network; default: the images' own size (files: 224).
    :param lr: peak learning rate of training; default 0.1 from scratch, 0.01 from given weights.
    :param query_fraction: query share of a drawn split (default 1/6: 100 of 600 per CIFAR class).
    :param dtype: ``"float16"`` or ``"float32"`` features in the bank.
    :param save_weights: write the trained backbone's state dict here (a ``.pt`` or ``.pth``
        file, torchvision layout, with its trained head), loadable later with ``weights=``.
    :param inputs: other files the caller read to make ``image_set`` (the CIFAR ``.npz``, a
        NUS-WIDE list), which ``out`` and ``save_weights`` may never name; ``weights`` and a
        ``split`` bank path are inputs already.
    :param force: let ``out`` and ``save_weights`` replace an existing file of another kind
        (never an input): checked before anything is computed, by
        :func:`hashgym.atomic.check_output`.
    :return: the validated bank; ``meta`` records source, backbone, weights, epochs, seed,
        limit, split, timing and, when trained, the backbone's top-1 on the query images.
    :raises FeatureError: on a bad argument, or a device torch does not know
        or this machine lacks.
    :raises BackboneError: when the weights cannot be had, read or fitted to the backbone.
    :raises OutputPathError: when ``out`` or ``save_weights`` would destroy an input, the other
        output, or (without ``force``) an existing file of another kind.
    :raises DatasetError: on a limit out of range or an unreadable image.
    """
    import torch

    if backbone not in BACKBONES:
        raise FeatureError(f"unknown backbone {backbone!r}; expected one of {', '.join(BACKBONES)}")
    if train_epochs < 0:
        raise FeatureError(f"train_epochs must be >= 0, got {train_epochs}")
    if batch_size < 1:
        raise FeatureError(f"batch_size must be >= 1, got {batch_size}")
    if dtype not in ("float16", "float32"):
        raise FeatureError(f"dtype must be 'float16' or 'float32', got {dtype!r}")
    if image_size is not None and image_size < 8:
        raise FeatureError(f"image_size must be at least 8 pixels, got {image_size}")
    if save_weights is not None and train_epochs == 0:
        raise FeatureError("save_weights needs train_epochs > 0 (there is nothing trained to save)")
    if weights is not None and weights != "imagenet":
        weights = Path(weights)
    read = [*inputs, None if weights == "imagenet" else weights,
            split if isinstance(split, (str, os.PathLike)) else None]
    check_outputs(out, save_weights, read, force)
    try:
        dev = check_device(device)
    except DeviceError as exc:
        raise FeatureError(str(exc)) from exc

    full_split, full_train, split_how = _resolve_split(image_set, split, query_fraction, seed)
    rows = np.arange(len(image_set))
    if limit is not None:
        rows = stratified_sample(image_set.strata(), limit, seed, split=full_split)
    images = image_set if limit is None else image_set.take(rows)
    sub_split = (
        full_split[rows]
        if full_split is not None
        else stratified_split(images.strata(), query_fraction, seed)
    )
    for name, value in (("query", QUERY), ("database", DATABASE)):
        if not np.any(sub_split == value):
            raise FeatureError(f"the split leaves no {name} images (limit={limit})")
    images = dataclasses.replace(images, split=sub_split)

    size = image_size or (int(images.images.shape[1]) if images.images is not None else 224)
    job = _Job(
        images=images,
        backbone=backbone,
        weights=weights,
        epochs=int(train_epochs),
        seed=seed,
        batch_size=batch_size,
        size=size,
        lr=lr if lr is not None else (0.1 if weights is None else 0.01),
        device=dev,
        progress=progress,
        train=None if full_train is None else full_train[rows],
    )
    weights_id = weights_identity(weights, backbone)
    key = _cache_key(job, limit, weights_id, dtype)
    cache_path = Path(cache_dir) / cache_file_name(images, backbone, key) if cache_dir else None
    out_path = Path(out) if out is not None else None
    weights_out = Path(save_weights) if save_weights is not None else None
    for candidate in (out_path, cache_path):
        bank = _try_cached(candidate, key, weights_out) if candidate is not None else None
        if bank is not None:
            for other in (out_path, cache_path):
                if other is not None and other != candidate:
                    bank.save(other)
            return bank

    started = time.time()
    _, n_outputs, _ = _targets(images)
    with _seeded(seed, dev):
        body, head, _dim, weights_id = build_backbone(backbone, weights, n_outputs)
        body.to(dev)
        head.to(dev)
        if train_epochs:
            _train(job, body, head)
        elif weights is None:
            logger.warning(
                "extracting with randomly initialised %s weights (no training, no "
                "weights file): the features carry little class information",
                backbone,
            )
        feats, logits = _forward_all(job, body, head)
    meta: dict[str, Any] = {
        "source": images.source,
        "backbone": backbone,
        "layer": "penultimate (global average pool)"
        if backbone in RESNETS
        else "fc7 (after ReLU)",
        "weights": weights_id,
        "epochs": int(train_epochs),
        "seed": seed,
        "limit": limit,
        "split": split_how,
        "input": f"{size}x{size}, ImageNet channel normalisation",
        "device": str(dev),
        "seconds": round(time.time() - started, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "torch": torch.__version__,
        "recipe": RECIPE_VERSION,
        "cache_key": key,
    }
    if train_epochs:
        _, _, multi = _targets(images)
        loss = (
            "binary cross-entropy on multi-hot"
            if multi
            else f"cross-entropy on {images.level_names[-1]}, label smoothing {_LABEL_SMOOTHING}"
        )
        meta["training"] = (
            f"{loss}; SGD nesterov m={_MOMENTUM} wd={_WEIGHT_DECAY}, OneCycle max_lr={job.lr}, "
            f"batch {batch_size}, crop+flip; "
            + ("database images only" if job.train is None else
               f"the split bank's {int(job.train.sum())} training images only")
        )
        name, value = _query_top1(images, logits)
        meta[name] = round(value, 4)
        logger.info("backbone %s: %s = %.4f", backbone, name, value)
    if weights_out is not None:
        _save_state(body, head, backbone, weights_out)
        meta["saved_weights"] = str(weights_out.resolve())
        meta["saved_weights_sha256"] = sha256_file(weights_out)
    if limit is not None:
        meta["rows"] = rows.tolist()
    source_meta = {k: v for k, v in image_set.meta.items() if k != "image_source"}
    if source_meta:  # the image source is recorded once, below
        meta["source_meta"] = source_meta
    image_source = image_set.meta.get("image_source")  # where the bank's images can be read
    if isinstance(image_source, dict):
        if image_set.images is None:  # files: decoded at the side the backbone saw
            image_source = {**image_source, "side": size}
        meta["image_source"] = image_source
    bank = FeatureBank(
        features=feats.astype(dtype),
        labels=images.labels,
        class_names=images.class_names,
        split=images.split,
        multi_hot=images.multi_hot,
        concept_names=images.concept_names,
        level_names=images.level_names,
        meta=meta,
        image_index=rows if isinstance(image_source, dict) else None,
        train=job.train,
    )
    for target in (cache_path, out_path):
        if target is not None:
            bank.save(target)
            logger.info("wrote feature bank %s", target)
    return bank


def _save_state(body: torch.nn.Module, head: torch.nn.Linear, backbone: str, path: Path) -> None:
    """Write the trained network as one torchvision-layout state dict (atomically)."""
    import torch

    state = {k: v.detach().cpu() for k, v in body.state_dict().items()}
    prefix = head_prefix(backbone)
    state.update({prefix + k: v.detach().cpu() for k, v in head.state_dict().items()})
    with atomic_write(path) as fh:
        torch.save(state, fh)
    logger.info("wrote trained %s weights %s", backbone, path)
