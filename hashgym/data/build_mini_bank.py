"""Regenerate the small CIFAR-100 banks built into the package.

* ``cifar100_mini.npz`` (preset ``cifar100-mini``) is derived from the shared 60,000-image bank
  (``cifar100_resnet18_features.npz``); its queries are some of that bank's test queries.
* ``cifar100_dev_mini.npz`` (preset ``cifar100-dev-mini``, ``cifar100-mini``'s development twin)
  is derived the same way from the development bank (``cifar100_resnet18_dev_features.npz``);
  its queries are validation queries that the development backbone never saw, and none of its
  images is a test image. Settings for ``cifar100-mini`` are chosen on it.

Both hold:

* all 100 fine classes and 20 super-classes, both levels;
* 70 database and 20 query images per fine class (9,000 images), drawn with seed 0 from the
  parent bank's own database and query splits;
* features reduced from 512 to 128 dimensions by PCA fitted on the parent's database images
  only (query images never influence the projection), stored as float16;
* the parent's ``image_index`` where it has one (the development bank's rows name their images
  in ``cifar100.npz``; the shared bank's rows are in image order and carry none).

Usage::

    python -m hashgym.data.build_mini_bank /path/to/cifar100_resnet18_features.npz
    python -m hashgym.data.build_mini_bank /path/to/cifar100_resnet18_dev_features.npz \
        --out hashgym/data/cifar100_dev_mini.npz
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from hashgym.atomic import OutputPathError, check_output
from hashgym.bank import DATABASE, QUERY, FeatureBank

logger = logging.getLogger(__name__)

OUT = Path(__file__).with_name("cifar100_mini.npz")


#: Keys of the parent's meta that describe the parent file itself, not its images, and are
#: not copied into ``parent_meta``: a derived bank is a file of its own.
_FILE_META = ("source", "image_source", "protocol", "development")


def build_mini_bank(
    full: FeatureBank, n_database: int = 70, n_query: int = 20, dim: int = 128, seed: int = 0,
    source: str = "cifar100_resnet18_features.npz",
) -> FeatureBank:
    """Subsample ``full`` per fine class and project its features by database-fitted PCA.

    :param full: the parent bank, with fine labels as its last level and its own
        database/query split.
    :param n_database: database images drawn per fine class from the parent's database split.
    :param n_query: query images drawn per fine class from the parent's query split.
    :param dim: the PCA dimension.
    :param seed: the draw's seed.
    :param source: the parent's file name, recorded in ``meta["source"]`` (its own meta, the
        backbone's description included, goes to ``meta["parent_meta"]``).
    """
    rng = np.random.default_rng(seed)
    database = full.split == DATABASE
    x_db = np.asarray(full.features[database], dtype=np.float64)
    mean = x_db.mean(axis=0)
    # Principal directions of the database features: eigenvectors of their covariance.
    cov = np.cov(x_db - mean, rowvar=False)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1][:dim]
    components = eigvec[:, order]
    explained = float(eigval[order].sum() / eigval.sum())
    fine = full.labels[:, -1]
    rows = []
    for c in range(full.n_classes[-1]):
        for part, k in ((DATABASE, n_database), (QUERY, n_query)):
            pool = np.flatnonzero((fine == c) & (full.split == part))
            rows.append(np.sort(rng.choice(pool, size=k, replace=False)))
    keep = np.sort(np.concatenate(rows))
    projected = (np.asarray(full.features[keep], dtype=np.float64) - mean) @ components
    meta = {
        "source": source,
        "derived": "hashgym.data.build_mini_bank",
        "per_class": {"database": n_database, "query": n_query},
        "pca": {"dim": dim, "fitted_on": f"the {int(database.sum()):,} database images",
                "explained": round(explained, 4)},
        "seed": seed,
        "parent_meta": {k: v for k, v in full.meta.items() if k not in _FILE_META},
    }
    return full.take(keep, features=projected.astype(np.float16), meta=meta)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("full_bank", type=Path, help="the shared cifar100_resnet18_features.npz")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:  # the shared bank is never the output; a file that is not a bank is never replaced
        check_output(args.out, suffix=".npz", kind="bank", keys=("features", "labels", "split"),
                     inputs=(args.full_bank,))
    except OutputPathError as exc:
        parser.error(str(exc))
    mini = build_mini_bank(FeatureBank.load(args.full_bank), source=args.full_bank.name)
    mini.save(args.out)
    logger.info("wrote %s (%d images, %d-d, %.1f MB)", args.out, mini.n, mini.dim,
                args.out.stat().st_size / 1e6)


if __name__ == "__main__":
    main()
