"""``hashgym features``: extract CNN features of an image set into a cached bank.

The images come from the shared ``cifar100.npz`` (``$HASHGYM_DATA/cifar100/``), torchvision's
CIFAR files, a NUS-WIDE list file or a folder of your own pictures; the extraction, its cache
and its outputs are :func:`hashgym.features.extract_features`'s. The command prints where the
bank is and its summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hashgym.backbones import BACKBONES
from hashgym.datasets import (
    ImageSet,
    load_cifar100_npz,
    load_nuswide_list,
    load_torchvision_cifar,
)
from hashgym.features import (
    FeatureError,
    cache_file_name,
    check_outputs,
    default_cache_dir,
    extract_features,
)
from hashgym.folders import load_image_folder
from hashgym.protocols import configured_data_dir

__all__ = ["SOURCES", "add_arguments", "run_from_args"]

SOURCES = ("cifar100-npz", "cifar100", "cifar10", "nuswide", "folder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``hashgym features`` options to ``parser``."""
    src = parser.add_argument_group("images")
    src.add_argument(
        "--source",
        choices=SOURCES,
        default="cifar100-npz",
        help="cifar100-npz: the shared cifar100.npz; cifar100/cifar10: torchvision's "
        "standard files; nuswide: a NUS-WIDE list file; folder: your own image files in "
        "DIR/<class>/ or DIR/<super-class>/<class>/ (hashgym.folders) (default: %(default)s)",
    )
    src.add_argument(
        "--images",
        metavar="PATH",
        help="the .npz file (cifar100-npz; default $HASHGYM_DATA/cifar100/"
        "cifar100.npz), the torchvision root folder, the NUS-WIDE list file, or the folder",
    )
    src.add_argument(
        "--download",
        action="store_true",
        help="torchvision CIFAR: download the official archive if missing",
    )
    src.add_argument(
        "--no-verify",
        action="store_true",
        help="torchvision CIFAR: skip the MD5 check (only for files you made yourself)",
    )
    src.add_argument("--image-root", metavar="DIR", help="nuswide: folder of the image files")
    src.add_argument("--query-list", metavar="PATH", help="nuswide: list file of the query images")
    src.add_argument(
        "--concept-names", metavar="PATH", help="nuswide: file with one concept name per line"
    )
    src.add_argument(
        "--split-file", metavar="PATH",
        help="folder: text file of the query images, one path relative to the folder per line "
             "(default: a seeded split stratified by class, --query-fraction)",
    )
    src.add_argument(
        "--skip-unreadable", action="store_true",
        help="folder: skip (and count) files Pillow cannot read instead of refusing the folder",
    )
    net = parser.add_argument_group("backbone")
    net.add_argument(
        "--backbone",
        choices=BACKBONES,
        default="resnet18",
        help="torchvision backbone (default: %(default)s)",
    )
    net.add_argument(
        "--weights",
        metavar="PATH|imagenet",
        help="'imagenet' (needs internet once) or a state-dict file; default: random "
        "initialisation",
    )
    net.add_argument(
        "--epochs",
        type=int,
        default=0,
        help="train the backbone this many epochs on the database images first",
    )
    net.add_argument("--lr", type=float, help="peak learning rate (default 0.1, 0.01 from weights)")
    net.add_argument(
        "--image-size", type=int, help="input side length (default: native, files 224)"
    )
    net.add_argument("--save-weights", metavar="PATH",
                     help="write the trained backbone here (a .pt or .pth file; never an input; "
                          "an existing file that is not a torch.save file needs --force)")
    run = parser.add_argument_group("run")
    run.add_argument("--limit", type=int, help="keep this many images (stratified, seeded)")
    run.add_argument(
        "--split-from", metavar="BANK",
        help="take the query/database split from a bank (and its training subset: the "
             "backbone then trains on those images only)",
    )
    run.add_argument(
        "--query-fraction",
        type=float,
        default=1 / 6,
        help="query share when a split is drawn (default: 1/6)",
    )
    run.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    run.add_argument("--batch-size", type=int, default=256, help="default: %(default)s")
    run.add_argument("--device", help="cpu, cuda, ... (default: cuda when present)")
    run.add_argument(
        "--dtype",
        choices=("float16", "float32"),
        default="float16",
        help="feature dtype in the bank (default: %(default)s)",
    )
    run.add_argument("--out", metavar="PATH",
                     help="write the bank here (a .npz; never an input; an existing file that "
                          "is not a bank needs --force)")
    run.add_argument("--force", action="store_true",
                     help="let --out and --save-weights replace an existing file of another "
                          "kind (never an input)")
    run.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="folder of cached banks (default without --out: $HASHGYM_CACHE or "
        "~/.cache/hashgym/features)",
    )
    run.add_argument(
        "--threads", type=int, help="CPU threads torch may use (default: torch's own choice)"
    )
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _load_source(args: argparse.Namespace) -> ImageSet:
    if args.source != "folder" and (args.split_file or args.skip_unreadable):
        raise FeatureError("--split-file and --skip-unreadable are options of --source folder")
    if args.source == "cifar100-npz":
        path = args.images
        if path is None:
            data = configured_data_dir()
            if data is None:
                raise FeatureError("--images is required (or set HASHGYM_DATA to the data folder)")
            path = data / "cifar100" / "cifar100.npz"
        return load_cifar100_npz(path)
    if args.images is None:
        raise FeatureError(f"--images is required for --source {args.source}")
    if args.source == "folder":
        return load_image_folder(args.images, split_file=args.split_file,
                                 skip_unreadable=args.skip_unreadable)
    if args.source in ("cifar100", "cifar10"):
        return load_torchvision_cifar(
            args.images, args.source, download=args.download, verify=not args.no_verify
        )
    if args.image_root is None:
        raise FeatureError("--image-root is required for --source nuswide")
    return load_nuswide_list(
        args.images, args.image_root, query_list=args.query_list, concept_names=args.concept_names
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym features`` from parsed arguments; print where the bank is and its summary.

    :return: the exit status, 0 (a bad argument or input raises a :class:`HashgymError`, which
        the ``hashgym`` command reports with exit status 2).
    """
    if args.threads is not None:
        if args.threads < 1:
            raise FeatureError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    # the outputs first: a slip of the shell costs nothing, not an extraction
    check_outputs(args.out, args.save_weights,
                  (args.images, args.query_list, args.concept_names, args.split_from,
                   None if args.weights == "imagenet" else args.weights), args.force)
    image_set = _load_source(args)
    cache_dir = args.cache_dir or (None if args.out else default_cache_dir())
    bank = extract_features(
        image_set,
        backbone=args.backbone,
        weights=args.weights,
        train_epochs=args.epochs,
        split=args.split_from,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        cache_dir=cache_dir,
        limit=args.limit,
        progress=not args.no_progress,
        out=args.out,
        image_size=args.image_size,
        lr=args.lr,
        query_fraction=args.query_fraction,
        dtype=args.dtype,
        save_weights=args.save_weights,
        inputs=(args.images, args.query_list, args.concept_names),
        force=args.force,
    )
    where = args.out or str(
        Path(cache_dir) / cache_file_name(image_set, args.backbone, bank.meta["cache_key"])
    )
    print(f"feature bank: {where}")
    summary = bank.summary()
    summary["meta"] = {k: v for k, v in summary["meta"].items() if k != "rows"}
    if "files" in summary["meta"].get("image_source", {}):  # a folder's files, one per image
        files = summary["meta"]["image_source"]["files"]
        summary["meta"]["image_source"] = {**summary["meta"]["image_source"],
                                           "files": f"<{len(files)} paths>"}
    print(json.dumps(summary, indent=2, default=str))
    return 0
