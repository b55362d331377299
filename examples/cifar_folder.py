"""Write CIFAR-100 images as a folder of PNG files, the layout of your own photos.

The README's own-images example starts here: it needs a folder of labelled image files, and
the shared ``cifar100.npz`` is what this machine has. The images of a few classes go to
``OUT/<super-class>/<class>/NNNN.png`` (two label levels for hashgym features --source folder),
and one other image of each class, never written there, goes to ``NEW/<class>.png``: pictures
to search with.

    python examples/cifar_folder.py --out photos --new new-photos
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from hashgym.protocols import configured_data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = (configured_data_dir() or Path("data")) / "cifar100" / "cifar100.npz"
    parser.add_argument("--images", default=str(default), help="cifar100.npz (default: "
                        "$HASHGYM_DATA/cifar100/cifar100.npz)")
    parser.add_argument("--out", required=True, help="folder to write the class folders into")
    parser.add_argument("--new", required=True, help="folder for one new picture per class")
    parser.add_argument("--classes", nargs="+", default=["rose", "sunflower", "cloud", "sea"],
                        help="CIFAR-100 classes to take (default: two flowers and two outdoor "
                             "scenes, two super-classes)")
    parser.add_argument("--per-class", type=int, default=50, help="images per class (50)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with np.load(args.images, allow_pickle=False) as data:
        images, fine, coarse = data["images"], data["fine_labels"], data["coarse_labels"]
        fine_names, coarse_names = list(data["fine_names"]), list(data["coarse_names"])
    rng = np.random.default_rng(args.seed)
    out, new = Path(args.out), Path(args.new)
    written = 0
    for name in args.classes:
        f = fine_names.index(name)
        rows = rng.permutation(np.flatnonzero(fine == f))  # the file's order is by shard
        folder = out / coarse_names[coarse[rows[0]]] / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, row in enumerate(rows[: args.per_class]):
            Image.fromarray(images[row]).save(folder / f"{i:04d}.png")
        new.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[rows[args.per_class]]).save(new / f"{name}.png")
        written += args.per_class
    print(f"wrote {written} images to {out}/ and {len(list(new.glob('*.png')))} to {new}/")


if __name__ == "__main__":
    main()
