"""fresco from Python: score compiled models, apply holdouts, backfill windowed
features and build training sets, over numpy and Arrow with no per-row Python.

The work is done by the same Rust code as the ``fresco`` command and the SDK (the
extension module ``fresco._native``); results are bit-for-bit those of the Rust side.

>>> import numpy as np, fresco
>>> model = fresco.Model("wasm-models/eta/model/eta.wasm")      # doctest: +SKIP
>>> model.predict(np.zeros((2, len(model.inputs))))            # doctest: +SKIP
array([[...]])
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping, Sequence, Union

import numpy as np
import pyarrow as pa

from . import _native
from ._errors import (
    AggregateError,
    CompileError,
    DatasetError,
    FrescoError,
    HoldoutError,
    InputError,
    InputTypeError,
    ModelError,
    ModelNotFoundError,
)
from ._native import Definitions, LateMarker, holdout_bucket

__version__ = _native.__version__

__all__ = [
    "Model",
    "compile",
    "Holdout",
    "holdout",
    "holdout_bucket",
    "Definitions",
    "LateMarker",
    "mark_events",
    "backfill",
    "build_training_set",
    "FrescoError",
    "ModelError",
    "ModelNotFoundError",
    "InputError",
    "InputTypeError",
    "CompileError",
    "HoldoutError",
    "AggregateError",
    "DatasetError",
]

PathLike = Union[str, "os.PathLike[str]"]
Tabular = Union[pa.RecordBatch, pa.Table]


def _batches(data: Tabular) -> list[pa.RecordBatch]:
    if isinstance(data, pa.RecordBatch):
        return [data]
    if isinstance(data, pa.Table):
        return data.to_batches()
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False).to_batches()
    raise InputTypeError(f"expected a pyarrow RecordBatch or Table (or a pandas DataFrame), not {type(data).__name__}")


class Model:
    """A compiled fresco model (``.wasm``), scored in-process by wasmtime.

    ``predict`` takes a 2-D numpy array (rows × inputs, in ``inputs`` order) and returns
    a 2-D float64 array (rows × outputs); or a pyarrow ``RecordBatch`` / ``Table`` (or a
    pandas ``DataFrame``) whose columns are matched to the inputs by name, and returns
    the same kind with one float64 column per output. NaN and nulls are missing values,
    handled as the model's metadata declares.
    """

    def __init__(self, path: PathLike | None = None, *, data: bytes | None = None):
        if (path is None) == (data is None):
            raise TypeError("give a model path or data=bytes, not both")
        if path is not None:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError as e:
                raise ModelNotFoundError(e.errno, f"no model file {os.fspath(path)}", os.fspath(path)) from e
            except OSError as e:
                raise ModelError(f"{os.fspath(path)}: {e.strerror or e}") from e
        # The module's bytes are kept so that a model pickles (joblib, multiprocessing,
        # Spark UDFs that capture it): the copy is loaded and validated again where it
        # lands, and scores the same bits.
        self._data = bytes(data)
        try:
            self._native = _native.Model.from_bytes(self._data)
        except ModelError as e:
            if path is None:
                raise
            raise ModelError(f"{os.fspath(path)}: {e}") from e

    def __reduce__(self):
        return (type(self).from_bytes, (self._data,))

    @classmethod
    def from_bytes(cls, data: bytes) -> "Model":
        """Loads a model from the bytes of a ``.wasm`` file."""
        return cls(data=data)

    name = property(lambda self: self._native.name, doc="The model's name.")
    version = property(lambda self: self._native.version, doc="The model's version.")
    inputs = property(lambda self: self._native.inputs, doc="Input names, in row order.")
    outputs = property(lambda self: self._native.outputs, doc="Output names, in row order.")
    sha256 = property(lambda self: self._native.sha256, doc="SHA-256 of the module, hex.")

    @property
    def metadata(self) -> dict:
        """The metadata document embedded in the module."""
        import json

        return json.loads(self._native.metadata_json)

    def predict(self, data, *, squeeze: bool = False):
        """Scores rows: see the class documentation for the accepted kinds. A pandas
        ``DataFrame`` comes back with its index. ``squeeze=True`` returns a model with
        one output as one column: a 1-D numpy array or a pandas ``Series``."""
        if squeeze:
            if len(self.outputs) != 1:
                raise InputError(f"squeeze=True needs a model with one output; {self.name} has {len(self.outputs)}")
            out = self.predict(data)
            if isinstance(out, np.ndarray):
                return out[:, 0]
            if isinstance(out, (pa.Table, pa.RecordBatch)):
                return out.column(0).to_numpy()
            return out[self.outputs[0]]
        if isinstance(data, np.ndarray):
            return self._predict_array(data)
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover
            pd = None
        if pd is not None and isinstance(data, pd.DataFrame):
            out = self.predict(pa.Table.from_pandas(self._encode_categories(data), preserve_index=False)).to_pandas()
            out.index = data.index
            return out
        if isinstance(data, pa.RecordBatch):
            return self._native.predict_batch(data)
        if isinstance(data, pa.Table):
            batches = [self._native.predict_batch(b) for b in data.to_batches()]
            if not batches:
                fields = [pa.field(o, pa.float64(), nullable=False) for o in self.outputs]
                return pa.table({f.name: pa.array([], pa.float64()) for f in fields})
            return pa.Table.from_batches(batches)
        raise InputTypeError(f"cannot score a {type(data).__name__}: give a 2-D numpy array or a pyarrow RecordBatch or Table")

    def predict_interval(self, data) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated range of each row, ``(lower, upper)`` as float64 arrays, by the
        interval rule the artifact declares (``fresco compile --interval``): the same
        bits as ``Prediction::interval`` in Rust. ``data`` as for :meth:`predict`
        (a table's columns are matched to the inputs by name)."""
        if isinstance(data, np.ndarray):
            self._check_array(data)
            flat = np.ascontiguousarray(data, dtype=np.float64).reshape(-1)
            bounds = [self._native.predict_interval_flat(pa.array(flat, type=pa.float64()), data.shape[0])]
        else:
            try:
                import pandas as pd
            except ImportError:  # pragma: no cover
                pd = None
            if pd is not None and isinstance(data, pd.DataFrame):
                data = pa.Table.from_pandas(self._encode_categories(data), preserve_index=False)
            if not isinstance(data, (pa.Table, pa.RecordBatch)):
                raise InputTypeError(f"cannot score a {type(data).__name__}: give a 2-D numpy array or a pyarrow RecordBatch or Table")
            batches = [data] if isinstance(data, pa.RecordBatch) else data.to_batches()
            bounds = [self._native.predict_interval_batch(b) for b in batches]
        if not bounds:
            return np.array([], np.float64), np.array([], np.float64)
        lower = np.concatenate([b[0].to_numpy(zero_copy_only=False) for b in bounds])
        upper = np.concatenate([b[1].to_numpy(zero_copy_only=False) for b in bounds])
        return lower, upper

    def _encode_categories(self, frame):
        """``frame`` with its category (and string) input columns as category codes, the
        way the training library read them: by the category names the model declares
        (LightGBM's ``pandas_categorical``; a name not among them, or a missing value, is
        missing), else by the column's own codes (XGBoost's ``enable_categorical``)."""
        import pandas as pd

        encoded = None
        for spec in self.metadata["inputs"]:
            name, names = spec["name"], spec.get("categories")
            if name not in frame.columns:
                continue
            column = frame[name]
            is_category = isinstance(column.dtype, pd.CategoricalDtype)
            if names is not None and (is_category or not pd.api.types.is_numeric_dtype(column)):
                if is_category and not all(isinstance(c, str) for c in column.cat.categories):
                    column = column.astype(str).where(column.notna())
                codes = pd.Categorical(column, categories=names).codes.astype(np.float64)
            elif is_category:
                codes = column.cat.codes.to_numpy().astype(np.float64)
            else:
                continue
            codes[codes < 0] = np.nan
            if encoded is None:
                encoded = frame.copy()
            encoded[name] = codes
        return frame if encoded is None else encoded

    def _check_array(self, x: np.ndarray) -> None:
        if x.ndim != 2:
            raise InputError(f"expected a 2-D array (rows × {len(self.inputs)} inputs), got {x.ndim} dimensions")
        if x.shape[1] != len(self.inputs):
            raise InputError(f"model {self.name}@{self.version} takes {len(self.inputs)} inputs per row, the array has {x.shape[1]} columns")
        if not np.issubdtype(x.dtype, np.number):
            raise InputTypeError(f"expected numbers, got an array of {x.dtype}")

    def _predict_array(self, x: np.ndarray) -> np.ndarray:
        self._check_array(x)
        flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        out = self._native.predict_flat(pa.array(flat, type=pa.float64()), x.shape[0])
        return out.to_numpy(zero_copy_only=False).reshape(x.shape[0], len(self.outputs))

    def __repr__(self) -> str:
        return repr(self._native)


def compile(
    models,
    *,
    name: str | None = None,
    version: str = "1",
    interval: Mapping | None = None,
    out: PathLike | None = None,
) -> Model:
    """Compiles LightGBM / XGBoost models into one fresco model.

    ``models`` is one model or a sequence of them, each a path (LightGBM text, XGBoost
    JSON) or a trained object: a ``lightgbm.Booster`` or scikit-learn ``LGBMModel``, an
    ``xgboost.Booster`` or scikit-learn ``XGBModel``. An object is written out through
    its library's own dump (``model_to_string``, ``save_raw("json")``), so it compiles
    to the same bytes as its saved file. Several models over the same inputs (quantile
    models, say) are packed into one, their outputs in the order given. ``interval`` is
    the calibrated-interval JSON of ``fresco compile --interval`` as a dict. Writes the
    ``.wasm`` to ``out`` when given; returns the loaded model.

    >>> import lightgbm as lgb                                         # doctest: +SKIP
    >>> booster = lgb.train({"objective": "regression"}, lgb.Dataset(X, y))  # doctest: +SKIP
    >>> fresco.compile(booster, name="eta").predict(X)                 # doctest: +SKIP
    """
    import json
    import tempfile

    given = list(models) if isinstance(models, (list, tuple)) else [models]
    if name is None:
        first = given[0] if given else None
        name = os.path.splitext(os.path.basename(os.fspath(first)))[0] if isinstance(first, (str, os.PathLike)) else "model"
    interval_json = json.dumps(interval) if interval is not None else None
    with tempfile.TemporaryDirectory(prefix="fresco-compile-") as tmp:
        paths = [_model_file(m, tmp, i) for i, m in enumerate(given)]
        wasm = _native.compile(paths, name, version, interval_json)
    if out is not None:
        part = os.fspath(out) + ".partial"
        with open(part, "wb") as f:
            f.write(wasm)
        os.replace(part, out)
    return Model.from_bytes(wasm)


def _model_file(model, tmp: str, i: int) -> str:
    """A path to ``model``'s file: the path itself, or the trained object dumped by its
    own library into ``tmp``."""
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    booster = model
    try:
        if hasattr(model, "booster_") or type(model).__name__.startswith("LGBM"):
            booster = model.booster_  # a scikit-learn LGBMModel (raises when not fitted)
        elif hasattr(model, "get_booster"):
            booster = model.get_booster()  # a scikit-learn XGBModel
    except Exception as e:  # the libraries' own "not fitted" errors
        raise CompileError(f"cannot compile a {type(model).__name__}: {e}") from e
    library = type(booster).__module__.split(".")[0]
    if library == "lightgbm" and hasattr(booster, "model_to_string"):
        path = os.path.join(tmp, f"model-{i}.txt")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(booster.model_to_string())
        return path
    if library == "xgboost" and hasattr(booster, "save_raw"):
        path = os.path.join(tmp, f"model-{i}.json")
        with open(path, "wb") as f:
            f.write(bytes(booster.save_raw(raw_format="json")))
        return path
    raise CompileError(
        f"cannot compile a {type(model).__name__}: give a path, a LightGBM Booster or LGBMModel, "
        "or an XGBoost Booster or XGBModel"
    )


class Holdout(_native.Holdout):
    """A holdout set: the ids whose bucket (murmur3 of ``salt:id`` mod 10000) is below
    ``round(fraction × 10000)``; the same contract as the SDK's and the CLI's."""

    def contains_many(self, ids) -> np.ndarray:
        """Whether each id is held out, as a boolean numpy array (ids: any sequence or
        pyarrow array of strings; no nulls)."""
        arr = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(list(ids), type=pa.string())
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if arr.null_count:
            raise InputError("ids contain nulls")
        return self.contains_array(arr).to_numpy(zero_copy_only=False)


def holdout(salt: str, fraction: float, ids: Iterable[str], name: str = "holdout") -> np.ndarray:
    """Whether each id is in the holdout defined by ``salt`` and ``fraction``."""
    return Holdout(name, salt, fraction).contains_many(ids)


def mark_events(definitions: Definitions, stream: str, events: Tabular, latest_micros: int | None = None):
    """Applies a stream's late rule to its events in arrival order: returns the events
    with a ``recorded`` column (``accepted``, ``late``, ``future``) and the latest
    accepted event time (µs), to resume from in the next slice of the log."""
    marker = LateMarker(definitions, stream, latest_micros)
    table = pa.Table.from_batches(_batches(events)) if not isinstance(events, pa.Table) else events
    marks = [marker.mark(b) for b in table.to_batches()]
    recorded = pa.chunked_array(marks, type=pa.string()) if marks else pa.array([], pa.string())
    return table.append_column("recorded", recorded), marker.latest_micros


def backfill(definitions: Definitions, events: Mapping[str, Tabular], table: Tabular):
    """Windowed features point-in-time for every row of ``table``, as ``fresco backfill``
    computes them: returns ``(table with one float64 column per feature, report)``.

    ``events`` maps each stream to its log (entity column, ``ts``, optional ``value``,
    ``arrival`` and ``recorded``, the last from :func:`mark_events`).
    """
    batches, report = _native.backfill(
        definitions, {s: _batches(e) for s, e in events.items()}, _batches(table)
    )
    return pa.Table.from_batches(batches), report


def build_training_set(
    logs: PathLike | str | list[PathLike | str],
    model: str,
    policy: str,
    out: PathLike,
    *,
    start: str | None = None,
    end: str | None = None,
    label_window_days: int = 30,
    max_outcomes_in_memory: int = 5_000_000,
    mirror: PathLike | None = None,
) -> dict:
    """Builds a training set as ``fresco dataset`` does (Parquet at ``out``); ``policy``
    is ``holdout-only``, ``untreated`` or ``all-with-treatment``. Returns the report.

    ``logs`` is a log root, an object-store prefix (``s3://bucket/logs``; credentials
    and endpoint from the environment) or a list of them: the logs of a fleet, read as
    one. Object-store logs are copied into ``mirror`` (default: a temporary directory)."""
    sources = logs if isinstance(logs, (list, tuple)) else [logs]
    return _native.build_training_set(
        [os.fspath(s) for s in sources],
        model,
        policy,
        os.fspath(out),
        start,
        end,
        label_window_days,
        max_outcomes_in_memory,
        None if mirror is None else os.fspath(mirror),
    )
