#!/usr/bin/env python3
"""Train small scikit-learn MLPs, export them to ONNX with skl2onnx, and record
onnxruntime's predictions as the oracle for fresco's tract backend.

Usage: make_fixtures.py OUT_DIR [--seed N]

Writes, per case, `<name>.onnx` and `<name>.case.json` with the input names, the
output tensor scored, the output names, input rows, onnxruntime's outputs, and the
network's layers as the ONNX graph holds them (weights and biases rounded to f32, the
activation after each layer): `sdk/tests/onnx.rs` evaluates them exactly in f64 and
bounds what any f32 evaluation may differ from that (see `rounding_bound` there).
"""
import argparse
import json
import pathlib

import numpy as np
import onnxruntime as ort
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.neural_network import MLPClassifier, MLPRegressor


def layers(mlp):
    """The MLP's layers as skl2onnx writes them: f32 weights (inputs × units) and
    biases, the hidden activation after every layer but the last, then the output's."""
    acts = [mlp.activation] * (len(mlp.coefs_) - 1) + [mlp.out_activation_]
    return [
        {
            "weights": w.astype(np.float32).astype(np.float64).tolist(),
            "bias": b.astype(np.float32).astype(np.float64).tolist(),
            "activation": act,
        }
        for w, b, act in zip(mlp.coefs_, mlp.intercepts_, acts)
    ]


def write_case(out, name, onx, features, output_tensor, output_names, rows, mlp):
    path = out / f"{name}.onnx"
    path.write_bytes(onx.SerializeToString())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    result = session.run([output_tensor], {input_name: rows.astype(np.float32)})[0]
    result = np.asarray(result, dtype=np.float64).reshape(len(rows), -1)
    case = {
        "name": name,
        "inputs": features,
        "output_tensor": output_tensor,
        "outputs": output_names,
        "rows": rows.tolist(),
        "expected": result.tolist(),
        "layers": layers(mlp),
        "onnxruntime": ort.__version__,
    }
    (out / f"{name}.case.json").write_text(json.dumps(case))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)

    n_features = 12
    features = [f"f{i}" for i in range(n_features)]
    x = rng.normal(size=(4000, n_features))
    y = x[:, 0] * 2.0 - np.sin(x[:, 1]) * 3.0 + x[:, 2] * x[:, 3] + rng.normal(scale=0.1, size=len(x))
    rows = rng.normal(scale=1.5, size=(300, n_features))
    initial = [("input", FloatTensorType([None, n_features]))]

    reg = MLPRegressor(hidden_layer_sizes=(64, 32), max_iter=300, random_state=args.seed).fit(x, y)
    onx = convert_sklearn(reg, initial_types=initial, target_opset=17)
    write_case(args.out, "mlp_regressor", onx, features, "variable", ["y"], rows, reg)

    labels = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    clf = MLPClassifier(hidden_layer_sizes=(32,), activation="tanh", max_iter=300, random_state=args.seed).fit(x, labels)
    onx = convert_sklearn(clf, initial_types=initial, target_opset=17, options={id(clf): {"zipmap": False}})
    write_case(args.out, "mlp_classifier", onx, features, "probabilities", ["p0", "p1", "p2"], rows, clf)


if __name__ == "__main__":
    main()
