"""The Python package against the Rust side: the same scores (bit for bit), the same
holdout buckets as the shared reference vectors, the same backfill, and typed errors."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import fresco


def bits(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64)).view(np.uint64)


def datagen(repo):
    sys.path.insert(0, str(repo / "examples" / "spark"))
    import datagen as g

    return g


@pytest.fixture(scope="module")
def eta(repo):
    return fresco.Model(repo / "wasm-models" / "eta" / "model" / "eta.wasm")


def score_with_cli(fresco_bin, repo, model_path, table, inputs, tmp_path):
    g = datagen(repo)
    g.write_csv(table, inputs, tmp_path / "rows.csv")
    subprocess.run([fresco_bin, "score", str(model_path), "--input", str(tmp_path / "rows.csv"),
                    "--output", str(tmp_path / "scores.csv")], check=True, capture_output=True)
    return pcsv.read_csv(tmp_path / "scores.csv")


def test_eta_scores_equal_the_rust_runtime_bitwise(repo, eta, fresco_bin, tmp_path):
    table = datagen(repo).score_rows(eta.inputs, 5_000, seed=3)
    want = score_with_cli(fresco_bin, repo, repo / "wasm-models/eta/model/eta.wasm", table, eta.inputs, tmp_path)
    x = np.column_stack([table.column(c).to_numpy(zero_copy_only=False) for c in eta.inputs])
    from_numpy = eta.predict(x)
    assert from_numpy.shape == (5_000, len(eta.outputs))
    shuffled = table.select(list(reversed(table.column_names)))  # columns matched by name
    from_arrow = eta.predict(shuffled)
    assert from_arrow.column_names == eta.outputs
    for j, out in enumerate(eta.outputs):
        assert np.array_equal(bits(from_numpy[:, j]), bits(want.column(out))), out
        assert np.array_equal(bits(from_arrow.column(out)), bits(want.column(out))), out
    # A non-contiguous view and a data frame give the same bits.
    assert np.array_equal(bits(eta.predict(np.asfortranarray(x))), bits(from_numpy))
    assert np.array_equal(bits(eta.predict(shuffled.to_pandas()).to_numpy()), bits(from_numpy))


@pytest.mark.parametrize("fixture", ["lgb_binary", "lgb_categorical", "lgb_multiclass", "xgb_binary_logistic", "xgb_categorical", "xgb_multi_softprob"])
def test_compiled_in_python_equals_compiled_by_the_cli(repo, fresco_bin, tmp_path, fixture):
    fixtures = repo / "wasm-models" / "oracle" / "fixtures"
    case = json.loads((fixtures / f"{fixture}.case.json").read_text())
    source = fixtures / case["model"]
    model = fresco.compile(source, name=fixture, version="7", out=tmp_path / "py.wasm")
    subprocess.run([fresco_bin, "compile", str(source), "-o", str(tmp_path / "cli.wasm"), "--name", fixture,
                    "--version", "7"], check=True, capture_output=True)
    assert (tmp_path / "py.wasm").read_bytes() == (tmp_path / "cli.wasm").read_bytes()
    assert (model.name, model.version) == (fixture, "7")
    x = np.array([[np.nan if v is None else v for v in row] for row in case["inputs"]], dtype=np.float64)
    table = pa.table({name: x[:, i] for i, name in enumerate(model.inputs)})
    want = score_with_cli(fresco_bin, repo, tmp_path / "cli.wasm", table, model.inputs, tmp_path)
    got = model.predict(x)
    for j, out in enumerate(model.outputs):
        assert np.array_equal(bits(got[:, j]), bits(want.column(out))), out


def test_integer_and_null_columns_are_read_as_the_cli_reads_cells(eta):
    n = len(eta.inputs)
    x = np.arange(3 * n, dtype=np.float64).reshape(3, n)
    as_ints = pa.table({name: pa.array(x[:, i].astype(np.int64)) for i, name in enumerate(eta.inputs)})
    assert np.array_equal(bits(eta.predict(as_ints).to_pandas().to_numpy()), bits(eta.predict(x)))
    with_null = pa.table({name: pa.array([None, 1.0, 2.0], type=pa.float64()) for name in eta.inputs})
    nan_rows = np.array([[np.nan] * n, [1.0] * n, [2.0] * n])
    try:
        want = eta.predict(nan_rows)
    except fresco.InputError:
        with pytest.raises(fresco.InputError):
            eta.predict(with_null)
    else:
        assert np.array_equal(bits(eta.predict(with_null).to_pandas().to_numpy()), bits(want))


def test_holdout_equals_the_shared_reference_vectors(repo):
    vectors = json.loads((repo / "testdata" / "holdout_vectors.json").read_text())
    assert len(vectors["cases"]) > 100
    for fraction in vectors["fractions"]:
        assert fresco.Holdout("h", "s", fraction).threshold == vectors["thresholds"][repr(fraction)]
    by_salt: dict[str, list[dict]] = {}
    for case in vectors["cases"]:
        assert fresco.holdout_bucket(case["salt"], case["id"]) == case["bucket"]
        by_salt.setdefault(case["salt"], []).append(case)
    for salt, cases in by_salt.items():
        ids = [c["id"] for c in cases]
        for fraction in vectors["fractions"]:
            key = repr(fraction)
            h = fresco.Holdout("h", salt, fraction)
            assert [h.contains(i) for i in ids] == [c["in_holdout"][key] for c in cases]
            assert fresco.holdout(salt, fraction, ids).tolist() == [c["in_holdout"][key] for c in cases]


def test_backfill_equals_the_cli_and_a_per_key_replay_of_marked_events(repo, fresco_bin, tmp_path):
    g = datagen(repo)
    definitions = repo / "examples" / "aggregates" / "orders.toml"
    events = g.order_events(8_000, restaurants=40, seed=5)
    table = g.feature_rows(2_000, restaurants=40, seed=6)
    pq.write_table(events, tmp_path / "orders.parquet")
    pq.write_table(table, tmp_path / "table.parquet")
    subprocess.run([fresco_bin, "backfill", "--definitions", str(definitions), "--events",
                    f"orders={tmp_path / 'orders.parquet'}", "--table", str(tmp_path / "table.parquet"),
                    "-o", str(tmp_path / "cli.parquet")], check=True, capture_output=True)
    want = pq.read_table(tmp_path / "cli.parquet")
    defs = fresco.Definitions.from_file(definitions)
    got, report = fresco.backfill(defs, {"orders": events}, table)
    assert got.equals(want)
    assert report["events"] == 8_000 and report["late"] > 0 and report["future"] > 0

    # Marked in three slices of the log, then replayed key by key: the same features.
    third = events.num_rows // 3
    marked, latest = [], None
    for start in range(0, events.num_rows, third):
        part, latest = fresco.mark_events(defs, "orders", events.slice(start, third), latest)
        marked.append(part)
    marked = pa.concat_tables(marked)
    assert marked.column("recorded").to_pylist().count("late") == report["late"]
    assert marked.column("recorded").to_pylist().count("future") == report["future"]
    rows = []
    keys = {k for k in table.column("restaurant_id").to_pylist()}
    for key in keys:
        mine_events = marked.filter(pa.compute.equal(marked.column("restaurant_id"), key)) if key else marked.slice(0, 0)
        mine_rows = table.filter(pa.compute.equal(table.column("restaurant_id"), key) if key
                                 else pa.compute.is_null(table.column("restaurant_id")))
        out, _ = fresco.backfill(defs, {"orders": mine_events}, mine_rows)
        rows.append(out)
    per_key = pa.concat_tables(rows).sort_by("request_id")
    assert per_key.select(want.column_names).equals(want.sort_by("request_id"))


@pytest.mark.parametrize("policy", ["holdout-only", "untreated", "all-with-treatment"])
def test_training_sets_equal_the_cli(churn_logs, fresco_bin, tmp_path, policy):
    manifest = json.loads((churn_logs / "manifest.json").read_text())
    window = str(manifest["label_window_days"])
    subprocess.run([fresco_bin, "dataset", "--logs", str(churn_logs / "logs"), "--model", manifest["model"],
                    "--policy", policy, "--label-window-days", window, "--out", str(tmp_path / "cli.parquet")],
                   check=True, capture_output=True)
    report = fresco.build_training_set(churn_logs / "logs", manifest["model"], policy, tmp_path / "py.parquet",
                                       label_window_days=manifest["label_window_days"])
    assert report["rows_written"] == manifest["training_rows"][policy]
    assert report["per_policy"] == manifest["training_rows"]
    assert pq.read_table(tmp_path / "py.parquet").equals(pq.read_table(tmp_path / "cli.parquet"))


def test_training_sets_over_a_fleet(churn_logs, tmp_path):
    """The churn log's files spread over two replicas' roots (every other prediction
    file on each, every outcome on the root without its predictions' file), and the
    same log behind a `file://` URL: the training set of each equals the one root's."""
    manifest = json.loads((churn_logs / "manifest.json").read_text())
    logs = churn_logs / "logs"
    files = sorted(p for p in logs.rglob("*.parquet") if "_spool" not in p.parts)
    replicas = [tmp_path / "replica-a", tmp_path / "replica-b"]
    for i, path in enumerate(files):
        table = path.relative_to(logs).parts[0]
        target = replicas[i % 2 if table == "predictions" else (i + 1) % 2] / path.relative_to(logs)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    model, window = manifest["model"], manifest["label_window_days"]
    one = fresco.build_training_set(logs, model, "all-with-treatment", tmp_path / "one.parquet",
                                    label_window_days=window)
    fleet = fresco.build_training_set(replicas, model, "all-with-treatment", tmp_path / "fleet.parquet",
                                      label_window_days=window)
    mirror = tmp_path / "mirror"
    url = fresco.build_training_set(f"file://{logs}", model, "all-with-treatment", tmp_path / "url.parquet",
                                    label_window_days=window, mirror=mirror)
    assert one["per_policy"] == fleet["per_policy"] == url["per_policy"] == manifest["training_rows"]
    want = pq.read_table(tmp_path / "one.parquet").sort_by("prediction_id")
    for name in ["fleet", "url"]:
        # Columns come in first-seen order over the files, which the roots reorder.
        got = pq.read_table(tmp_path / f"{name}.parquet").sort_by("prediction_id").select(want.column_names)
        assert got.equals(want), name
    assert any(mirror.rglob("*.parquet")), "the URL's files were mirrored where asked"


def test_training_set_builder_errors(tmp_path):
    with pytest.raises(fresco.DatasetError, match="no prediction files"):
        fresco.build_training_set(tmp_path, "churn", "holdout-only", tmp_path / "out.parquet")
    with pytest.raises(fresco.DatasetError, match="sometimes"):
        fresco.build_training_set(tmp_path, "churn", "sometimes", tmp_path / "out.parquet")


def _score_in_worker(args):
    model, rows = args
    return model.predict(rows)


def test_a_pickled_model_scores_the_same_bits_in_other_processes(repo, eta):
    import multiprocessing
    import pickle

    rows = np.random.default_rng(7).uniform(0, 30, size=(500, len(eta.inputs)))
    expected = eta.predict(rows)
    copy = pickle.loads(pickle.dumps(eta))
    assert (copy.name, copy.version, copy.sha256) == (eta.name, eta.version, eta.sha256)
    assert np.array_equal(bits(copy.predict(rows)), bits(expected))
    # Fresh interpreters (spawn), each unpickling the model it is handed.
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_score_in_worker, [(eta, rows[i::4]) for i in range(4)])
    for i, got in enumerate(results):
        assert np.array_equal(bits(got), bits(expected[i::4])), f"worker {i}"


def test_bad_input_raises_typed_errors(repo, eta, tmp_path):
    (tmp_path / "bad.wasm").write_bytes(b"\0asm\x01\0\0\0garbage")
    with pytest.raises(fresco.ModelError):
        fresco.Model(tmp_path / "bad.wasm")
    with pytest.raises(fresco.ModelError, match="missing.wasm"):
        fresco.Model(tmp_path / "missing.wasm")
    with pytest.raises(fresco.InputError, match="inputs per row"):
        eta.predict(np.zeros((2, len(eta.inputs) + 1)))
    with pytest.raises(fresco.InputError, match="2-D"):
        eta.predict(np.zeros(len(eta.inputs)))
    with pytest.raises(fresco.InputError, match=eta.inputs[0]):
        eta.predict(pa.table({"something_else": [1.0]}))
    strings = pa.table({name: pa.array(["1.5"]) for name in eta.inputs})
    with pytest.raises(fresco.InputError, match="expected numbers"):
        eta.predict(strings)
    with pytest.raises(fresco.InputError):
        eta.predict([[1.0, 2.0]])
    (tmp_path / "model.txt").write_text("tree\nversion=v4\nnot a model")
    with pytest.raises(fresco.CompileError):
        fresco.compile(tmp_path / "model.txt")
    with pytest.raises(fresco.HoldoutError, match="1.5"):
        fresco.Holdout("h", "s", 1.5)
    with pytest.raises(fresco.AggregateError):
        fresco.Definitions.from_toml("[[stream]]\nname = 'x'\n")
    defs = fresco.Definitions.from_file(repo / "examples" / "aggregates" / "orders.toml")
    with pytest.raises(fresco.AggregateError, match="restaurant_id"):
        fresco.backfill(defs, {"orders": pa.table({"ts": pa.array([1], pa.int64())})},
                        pa.table({"restaurant_id": ["r"], "ts": pa.array([2], pa.int64())}))
    with pytest.raises(fresco.AggregateError, match="flights"):
        fresco.backfill(defs, {"flights": pa.table({"ts": [1]})}, pa.table({"ts": [1]}))
    for error in (fresco.ModelError, fresco.InputError, fresco.CompileError, fresco.HoldoutError,
                  fresco.AggregateError, fresco.DatasetError):
        assert issubclass(error, fresco.FrescoError)


def test_errors_are_also_the_built_in_exceptions_python_users_catch(eta, tmp_path):
    with pytest.raises(FileNotFoundError):
        fresco.Model(tmp_path / "missing.wasm")
    # Raised by the extension module (Rust), caught as the built-in.
    with pytest.raises(ValueError, match="inputs per row"):
        eta.predict(np.zeros((2, len(eta.inputs) + 1)))
    with pytest.raises(ValueError, match=eta.inputs[0]):
        eta.predict(pa.table({"something_else": [1.0]}))
    with pytest.raises(TypeError):
        eta.predict([[1.0, 2.0]])
    with pytest.raises(ValueError):
        fresco.Holdout("h", "s", 1.5)
    try:
        fresco.Definitions.from_toml("[[stream]]\nname = 'x'\n")
    except ValueError as e:
        assert type(e) is fresco.AggregateError and isinstance(e, fresco.FrescoError)
    for error, builtin in ((fresco.InputError, ValueError), (fresco.InputTypeError, TypeError),
                           (fresco.CompileError, ValueError), (fresco.HoldoutError, ValueError),
                           (fresco.AggregateError, ValueError), (fresco.DatasetError, ValueError),
                           (fresco.ModelNotFoundError, FileNotFoundError)):
        assert issubclass(error, builtin) and issubclass(error, fresco.FrescoError), error


def _trained_models(rng):
    """One trained object per oracle fixture family, and a function that saves it."""
    import lightgbm as lgb
    import pandas as pd
    import xgboost as xgb

    X = rng.normal(size=(400, 6))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = np.nan_to_num(X[:, 0]) * 2 + np.nan_to_num(X[:, 1]) + rng.normal(scale=0.1, size=400)
    cats = pd.DataFrame(X, columns=[f"f{j}" for j in range(6)])
    cats["f5"] = pd.Categorical(rng.integers(0, 6, size=400))
    classes = (y > np.median(y)).astype(int) + (y > np.quantile(y, 0.8)).astype(int)
    quiet = dict(verbose=-1, num_leaves=8, min_data_in_leaf=5)
    lgb_save = lambda m, p: (m.booster_ if hasattr(m, "booster_") else m).save_model(p)  # noqa: E731
    xgb_save = lambda m, p: (m.get_booster() if hasattr(m, "get_booster") else m).save_model(p)  # noqa: E731
    dcat = xgb.DMatrix(cats, y, enable_categorical=True)
    return [
        ("lightgbm booster", lgb.train(dict(quiet, objective="regression"), lgb.Dataset(X, y), 10), lgb_save, ".txt"),
        ("lightgbm categorical", lgb.train(dict(quiet, objective="regression", max_cat_to_onehot=2),
                                           lgb.Dataset(cats, y), 10), lgb_save, ".txt"),
        ("lightgbm multiclass", lgb.train(dict(quiet, objective="multiclass", num_class=3),
                                          lgb.Dataset(X, classes), 5), lgb_save, ".txt"),
        ("LGBMRegressor", lgb.LGBMRegressor(n_estimators=10, **quiet).fit(X, y), lgb_save, ".txt"),
        ("xgboost booster", xgb.train({"max_depth": 3}, xgb.DMatrix(X, y), 10), xgb_save, ".json"),
        ("xgboost categorical", xgb.train({"max_depth": 3, "max_cat_to_onehot": 1}, dcat, 10), xgb_save, ".json"),
        ("xgboost multiclass", xgb.train({"max_depth": 3, "objective": "multi:softprob", "num_class": 3},
                                         xgb.DMatrix(X, classes), 5), xgb_save, ".json"),
        ("XGBRegressor", xgb.XGBRegressor(n_estimators=10, max_depth=3).fit(X, y), xgb_save, ".json"),
    ]


def test_trained_objects_compile_to_the_bytes_of_their_saved_files(tmp_path):
    for label, model, save, suffix in _trained_models(np.random.default_rng(11)):
        path = tmp_path / f"{label.replace(' ', '_')}{suffix}"
        save(model, str(path))
        from_file = fresco.compile(path, name="m", out=tmp_path / "from_file.wasm")
        from_object = fresco.compile(model, name="m", out=tmp_path / "from_object.wasm")
        assert (tmp_path / "from_file.wasm").read_bytes() == (tmp_path / "from_object.wasm").read_bytes(), label
        assert from_file.sha256 == from_object.sha256, label
    with pytest.raises(fresco.CompileError, match="LinearRegression|give a path"):
        from sklearn.linear_model import LinearRegression

        fresco.compile(LinearRegression())
    import lightgbm as lgb

    with pytest.raises(fresco.CompileError, match="LGBMRegressor"):
        fresco.compile(lgb.LGBMRegressor())  # not fitted


def test_a_model_captured_by_a_spark_udf_scores_the_same_bits(eta):
    """mapInPandas ships the closure, and with it the pickled model, to Python workers."""
    from pyspark.sql import SparkSession  # installed by .ci/run; missing is a failure

    rows = np.random.default_rng(5).uniform(0, 30, size=(2_000, len(eta.inputs)))
    expected = eta.predict(rows)
    spark = (SparkSession.builder.master("local[2]").appName("fresco-pickle")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
    try:
        import pandas as pd

        frame = pd.DataFrame(rows, columns=eta.inputs)
        frame["row"] = np.arange(len(rows))
        df = spark.createDataFrame(frame).repartition(4)

        def score(batches):
            for batch in batches:
                out = eta.predict(batch[eta.inputs].to_numpy())
                yield pd.DataFrame({"row": batch["row"].to_numpy(), **{o: out[:, i] for i, o in enumerate(eta.outputs)}})

        schema = "row long, " + ", ".join(f"`{o}` double" for o in eta.outputs)
        got = df.mapInPandas(score, schema).toPandas().sort_values("row")
    finally:
        spark.stop()
    assert np.array_equal(got["row"].to_numpy(), np.arange(len(rows)))
    assert np.array_equal(bits(got[eta.outputs].to_numpy()), bits(expected))


def test_intervals_from_python_are_the_rust_rule(repo, eta, fresco_bin, tmp_path):
    """Each row's (lower, upper) equals, bit for bit, what `fresco score --interval`
    computes from the same row (missing values, segments and all)."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 30, size=(2_000, len(eta.inputs)))
    x[:, eta.inputs.index("weather")] = rng.integers(0, 3, size=len(x))
    x[:, eta.inputs.index("traffic")] = rng.uniform(0, 1, size=len(x))
    x[::50, 0] = np.nan  # missing values take the model's policy first, as in Rust
    lower, upper = eta.predict_interval(x)
    assert np.all(lower <= upper)
    pcsv.write_csv(pa.table({n: x[:, i] for i, n in enumerate(eta.inputs)}), tmp_path / "rows.csv")
    subprocess.run([fresco_bin, "score", "--interval", str(repo / "wasm-models" / "eta" / "model" / "eta.wasm"),
                    "--input", str(tmp_path / "rows.csv"), "--output", str(tmp_path / "scores.csv")], check=True)
    rust = pcsv.read_csv(tmp_path / "scores.csv")
    assert np.array_equal(bits(rust.column("low").to_numpy()), bits(lower))
    assert np.array_equal(bits(rust.column("high").to_numpy()), bits(upper))
    # The table form matches inputs by name.
    table_lower, _ = eta.predict_interval(pa.table({n: x[:, i] for i, n in enumerate(eta.inputs)}))
    assert np.array_equal(bits(table_lower), bits(lower))
    with pytest.raises(fresco.ModelError, match="declares no interval"):
        _one_output_model().predict_interval(np.zeros((1, 3)))


def _one_output_model():
    import lightgbm as lgb

    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    return fresco.compile(lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, x[:, 0]), 5), name="one")


def test_pandas_frames_keep_their_index_and_one_output_squeezes(eta):
    import pandas as pd

    rows = np.random.default_rng(9).uniform(0, 30, size=(5, len(eta.inputs)))
    frame = pd.DataFrame(rows, columns=eta.inputs, index=pd.Index(["a", "b", "c", "d", "e"], name="order"))
    out = eta.predict(frame)
    assert list(out.index) == ["a", "b", "c", "d", "e"] and out.index.name == "order"
    assert np.array_equal(bits(out.to_numpy()), bits(eta.predict(rows)))
    with pytest.raises(fresco.InputError, match="one output"):
        eta.predict(rows, squeeze=True)
    one = _one_output_model()
    x = np.random.default_rng(2).normal(size=(4, 3))
    flat = one.predict(x, squeeze=True)
    assert flat.shape == (4,) and np.array_equal(bits(flat), bits(one.predict(x)[:, 0]))
    series = one.predict(pd.DataFrame(x, columns=one.inputs, index=[10, 11, 12, 13]), squeeze=True)
    assert list(series.index) == [10, 11, 12, 13] and np.array_equal(bits(series.to_numpy()), bits(flat))


def test_a_lightgbm_model_trained_on_pandas_categories_scores_the_frame_as_lightgbm_does():
    import lightgbm as lgb
    import pandas as pd

    rng = np.random.default_rng(4)
    n = 3_000
    frame = pd.DataFrame({
        "distance": rng.normal(size=n),
        "city": pd.Categorical(rng.choice(["paris", "lyon", "nice", "lille", "metz"], n)),
        "kind": pd.Categorical(rng.choice(["a", "b", "c"], n)),
    })
    y = frame["distance"] + frame["city"].cat.codes * 0.7 + (frame["kind"] == "b") * 2 + rng.normal(scale=0.1, size=n)
    params = {"objective": "regression", "verbose": -1, "max_cat_to_onehot": 2, "min_data_per_group": 5, "cat_smooth": 1}
    booster = lgb.train(params, lgb.Dataset(frame, y), 20)
    model = fresco.compile(booster, name="cats")
    cities = next(i for i in model.metadata["inputs"] if i["name"] == "city")
    assert cities["categories"] == list(frame["city"].cat.categories)

    test = frame.sample(400, random_state=1)
    # Categories in another order, one never seen in training, and missing values.
    city = test["city"].astype(object).to_numpy().copy()
    city[:30] = "brest"
    city[30:40] = None
    test = test.assign(city=pd.Categorical(city, categories=["metz", "brest", "paris", "nice", "lyon", "lille"]))
    expected = booster.predict(test)
    assert np.array_equal(bits(model.predict(test, squeeze=True).to_numpy()), bits(expected))
    # Strings are read by name too (LightGBM itself takes only category columns).
    as_strings = test.assign(city=test["city"].astype(object), kind=test["kind"].astype(str))
    assert np.array_equal(bits(model.predict(as_strings, squeeze=True).to_numpy()), bits(expected))


def test_holdouts_and_definitions_pickle(repo):
    import pickle

    holdout = fresco.Holdout("eta-promo", "eta-promo", 0.05)
    copy = pickle.loads(pickle.dumps(holdout))
    assert type(copy) is fresco.Holdout and (copy.name, copy.salt, copy.fraction) == ("eta-promo", "eta-promo", 0.05)
    ids = [f"user-{i}" for i in range(2_000)]
    assert np.array_equal(copy.contains_many(ids), holdout.contains_many(ids))
    defs = fresco.Definitions.from_file(repo / "examples" / "aggregates" / "orders.toml")
    for original in (defs, defs.restricted_to(["orders"])):
        again = pickle.loads(pickle.dumps(original))
        assert (again.streams, again.features) == (original.streams, original.features)
