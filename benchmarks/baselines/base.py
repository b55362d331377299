"""The estimator interface every baseline shares (scikit-learn style).

* ``__init__`` only stores parameters (``n_bits``, ``seed`` and the method's hyperparameters);
  :meth:`BaseHasher.get_params` returns them.
* :meth:`BaseHasher.fit` learns from features and labels, given as arrays or as a
  :class:`~hashgym.bank.FeatureBank` and the split to fit on (``"train"`` by default).
* :meth:`BaseHasher.encode` maps features ``[N, D]`` to ``uint8`` 0/1 codes ``[N, n_bits]``; a bit
  is 1 where the method's real-valued output is ``>= 0``. Conversion goes through
  :func:`hashgym.codes.as_bits`.
* :meth:`BaseHasher.save` writes the fitted model atomically; :meth:`BaseHasher.load` (or
  :func:`load_baseline`) reads it back without unpickling anything.

File format (``hashgym-baseline/1``)
------------------------------------
Numpy methods (LSH, SH, ITQ) write an ``.npz`` with the keys ``format``, ``method``, ``params``
(JSON), ``n_features_in`` and ``state_<name>`` arrays; it is read with
``np.load(allow_pickle=False)``. The deep heads write a ``torch.save`` dictionary of the same
fields whose ``state`` is the network's ``state_dict``; it is read with
``torch.load(weights_only=True)``. :func:`load_baseline` tells the two apart by their contents.
"""

from __future__ import annotations

import inspect
import json
import os
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hashgym.atomic import atomic_write
from hashgym.bank import BankError, FeatureBank
from hashgym.benchmarks.baselines.labels import LabelError, LabelKind, LabelSet, as_label_set
from hashgym.codes import as_bits
from hashgym.errors import BenchError
from hashgym.validation import check_int

__all__ = ["FORMAT", "BaseHasher", "BaselineError", "check_features", "check_int", "load_baseline"]

FORMAT = "hashgym-baseline/1"
_REGISTRY: dict[str, type[BaseHasher]] = {}


#: This module's name for :class:`~hashgym.errors.BenchError` (an alias).
BaselineError = BenchError


def check_features(x: Any, name: str = "features", dim: int | None = None) -> np.ndarray:
    """Validate a feature matrix and return it as ``float32`` ``[N, D]``.

    :param x: ``[N, D]`` real-valued features.
    :param name: the argument's name, for messages.
    :param dim: the expected feature dimension ``D``, when known (at encode time).
    :raises BaselineError: for a wrong shape or dtype, an empty matrix, a dimension different from
        ``dim``, or NaN/inf values.
    """
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise BaselineError(f"{name} must be a [N, D] matrix, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise BaselineError(f"{name} is empty (shape {arr.shape})")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise BaselineError(f"{name} must be real numbers, got dtype {arr.dtype}")
    if dim is not None and arr.shape[1] != dim:
        raise BaselineError(
            f"feature dimension mismatch: {name} have {arr.shape[1]} columns but the model was "
            f"fitted on {dim}"
        )
    finite = np.isfinite(arr)
    if not finite.all():
        row, col = (int(v[0]) for v in np.nonzero(~finite))
        raise BaselineError(f"{name} contain NaN or inf (first at row {row}, column {col})")
    return arr.astype(np.float32, copy=False)


class BaseHasher:
    """Base class of the baselines: parameters, input checks, encoding and persistence.

    Subclasses set ``name`` and ``supervised``, take their hyperparameters as keyword arguments
    of ``__init__`` (stored unchanged under the same names) and implement :meth:`_fit`,
    :meth:`_project`, :meth:`_state` and :meth:`_set_state`.

    :param n_bits: code length ``K`` (at least 1).
    :param seed: seed of every random choice the method makes.
    """

    name: ClassVar[str] = ""
    supervised: ClassVar[bool] = False

    def __init__(self, n_bits: int, *, seed: int = 0) -> None:
        self.n_bits = n_bits
        self.seed = seed
        self._check_params()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            _REGISTRY[cls.name] = cls

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        names: list[str] = []
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            for param in inspect.signature(init).parameters.values():
                if param.name != "self" and param.kind not in (
                    param.VAR_KEYWORD, param.VAR_POSITIONAL
                ) and param.name not in names:
                    names.append(param.name)
        return names

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters and their current values."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> BaseHasher:
        """Change parameters (takes effect at the next :meth:`fit`).

        :raises BaselineError: for a name the estimator does not take.
        """
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise BaselineError(
                    f"{type(self).__name__} has no parameter {key!r}; valid: {', '.join(valid)}"
                )
            setattr(self, key, value)
        self._check_params()
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_params(self) -> None:
        """Validate parameters; subclasses extend it. Raises :class:`BaselineError`."""
        check_int(self.n_bits, "n_bits", 1, BaselineError)
        check_int(self.seed, "seed", 0, BaselineError)

    # ------------------------------------------------------------------ fit / encode
    def fit(
        self,
        X: np.ndarray | FeatureBank,
        y: np.ndarray | None = None,
        *,
        label_kind: LabelKind | None = None,
        split: str = "train",
    ) -> BaseHasher:
        """Learn the hash function.

        :param X: features ``[N, D]``, or a :class:`FeatureBank` (then ``y`` must be ``None``).
        :param y: labels: ``[N]`` class ids, ``[N, L]`` ids per level (``label_kind="hierarchy"``)
            or ``[N, C]`` 0/1 concepts (``label_kind="multi_hot"``). Unsupervised methods accept
            and ignore them (after checking them).
        :param label_kind: ``"single"``, ``"hierarchy"`` or ``"multi_hot"``; required for 2-D
            ``y``. For a bank the default is ``"hierarchy"`` (or ``"multi_hot"`` for a bank
            without levels); ``"single"`` uses the bank's finest level.
        :param split: for a bank, the split to fit on: ``"train"`` (default), ``"database"`` or
            ``"query"``.
        :return: ``self``.
        :raises BaselineError: for bad features, labels, parameters, or missing labels.
        """
        self._check_params()
        features, labels = self._fit_inputs(X, y, label_kind, split)
        if self.supervised and labels is None:
            raise BaselineError(f"{type(self).__name__} is supervised: fit() needs labels y")
        self._fit(features, labels)
        self.n_features_in_ = int(features.shape[1])
        return self

    def _fit_inputs(
        self, X: Any, y: Any, label_kind: LabelKind | None, split: str
    ) -> tuple[np.ndarray, LabelSet | None]:
        try:
            if isinstance(X, FeatureBank):
                if y is not None:
                    raise BaselineError(
                        "y must be None when fitting on a FeatureBank: the labels come from the bank"
                    )
                view = X.view(split)
                features = check_features(view.features, f"features of split {split!r}")
                kind = label_kind or ("hierarchy" if X.n_levels else "multi_hot")
                if kind == "multi_hot":
                    if view.multi_hot is None:
                        raise BaselineError("label_kind='multi_hot' but the bank has no multi_hot labels")
                    return features, as_label_set(view.multi_hot, "multi_hot")
                if not X.n_levels:
                    raise BaselineError(f"label_kind={kind!r} but the bank has no hierarchy levels")
                if kind == "single":
                    return features, as_label_set(
                        view.labels[:, -1], "single", n_classes=X.n_classes[-1:]
                    )
                return features, as_label_set(view.labels, kind, n_classes=X.n_classes)
            features = check_features(X, "X")
            if y is None:
                if label_kind is not None:
                    raise BaselineError(f"label_kind={label_kind!r} was given but y is None")
                return features, None
            return features, as_label_set(y, label_kind, n_rows=features.shape[0])
        except (LabelError, BankError) as exc:
            raise BaselineError(str(exc)) from exc

    def encode(self, features: np.ndarray) -> np.ndarray:
        """Binary codes of some features.

        :param features: ``[N, D]`` with ``D`` as at fit time.
        :return: ``uint8`` 0/1 codes ``[N, n_bits]``; bit ``k`` is 1 where the ``k``-th real-valued
            output is ``>= 0``.
        :raises BaselineError: before :meth:`fit`, or for a wrong shape or NaN/inf features.
        """
        self._check_fitted()
        x = check_features(features, "features", dim=self.n_features_in_)
        z = self._project(x)
        return as_bits(z >= 0, n_bits=self.n_bits)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise BaselineError(f"{type(self).__name__} is not fitted yet; call fit() first")

    # ------------------------------------------------------------------ subclass hooks
    def _fit(self, features: np.ndarray, labels: LabelSet | None) -> None:
        raise NotImplementedError

    def _project(self, features: np.ndarray) -> np.ndarray:
        """Real-valued outputs ``[N, n_bits]`` whose signs are the bits."""
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        """The fitted state to save (numpy arrays, or a torch ``state_dict``)."""
        raise NotImplementedError

    def _set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ persistence
    def _header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "method": self.name,
            "params": json.dumps(self.get_params(), sort_keys=True),
            "n_features_in": int(self.n_features_in_),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model atomically (see the module docstring for the format).

        :param path: destination file.
        :return: the path written.
        :raises BaselineError: before :meth:`fit`.
        """
        self._check_fitted()
        path = Path(path)
        header = self._header()
        arrays = {key: np.array(value) for key, value in header.items()}
        arrays.update({f"state_{key}": np.asarray(value) for key, value in self._state().items()})
        with atomic_write(path) as handle:
            np.savez(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BaseHasher:
        """Read a model written by :meth:`save`.

        On :class:`BaseHasher` itself this loads any baseline; on a subclass it also checks that
        the file holds that method.

        :raises BaselineError: for a missing, corrupted or foreign file, or another method's model.
        """
        header, state = _read_payload(Path(path))
        method = header["method"]
        target = _REGISTRY.get(method)
        if target is None:
            raise BaselineError(f"{path}: unknown baseline method {method!r}")
        if not issubclass(target, cls):
            raise BaselineError(f"{path} holds a {method!r} model, not a {cls.__name__}")
        try:
            params = json.loads(header["params"])
        except json.JSONDecodeError as exc:
            raise BaselineError(f"{path}: params are not valid JSON ({exc})") from exc
        model = target(**params)
        model._set_state(state)
        model.n_features_in_ = int(header["n_features_in"])
        return model


def _read_payload(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header fields and state of a saved baseline, from either file flavour."""
    if not path.is_file():
        raise BaselineError(f"no saved baseline at {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise BaselineError(f"cannot read baseline {path}: not a saved model ({exc})") from exc
    try:
        if "format.npy" in names:
            with np.load(path, allow_pickle=False) as archive:
                header = {k: archive[k].item() for k in ("format", "method", "params", "n_features_in")}
                state = {k[len("state_"):]: archive[k] for k in archive.files if k.startswith("state_")}
        else:
            import torch

            payload = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(payload, dict):
                raise BaselineError(f"cannot read baseline {path}: unexpected contents")
            header = {k: payload[k] for k in ("format", "method", "params", "n_features_in")}
            state = dict(payload["state"])
    except BaselineError:
        raise
    except (KeyError, ValueError, OSError, EOFError, RuntimeError, zipfile.BadZipFile) as exc:
        raise BaselineError(f"cannot read baseline {path}: truncated or corrupted ({exc})") from exc
    if header["format"] != FORMAT:
        raise BaselineError(f"{path} is not a {FORMAT} file (format {header['format']!r})")
    return header, state


def load_baseline(path: str | os.PathLike[str]) -> BaseHasher:
    """Load any saved baseline; the file says which method it is."""
    return BaseHasher.load(path)
