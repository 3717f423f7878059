import os
import pathlib
import shutil

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo() -> pathlib.Path:
    return REPO


@pytest.fixture(scope="session")
def fresco_bin() -> str:
    """The `fresco` command the workspace built: the Rust side the bindings must equal.
    Missing is a failure, never a skip: build it with `cargo build -p fresco-cli`."""
    candidates = [os.environ.get("FRESCO_BIN"),
                  str(pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "fresco"),
                  shutil.which("fresco")]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    pytest.fail("no fresco command: set FRESCO_BIN or run `cargo build -p fresco-cli` first")


@pytest.fixture(scope="session")
def churn_logs(tmp_path_factory) -> pathlib.Path:
    """Prediction, treatment and outcome logs with their manifest: FRESCO_CHURN_LOGS, or
    written now by the `churn_logs` example the workspace built (`cargo test` builds it)."""
    given = os.environ.get("FRESCO_CHURN_LOGS")
    if given:
        return pathlib.Path(given)
    example = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "examples" / "churn_logs"
    if not os.access(example, os.X_OK):
        pytest.fail("no churn logs: set FRESCO_CHURN_LOGS or build the example (`cargo test --workspace`)")
    out = tmp_path_factory.mktemp("churn")
    import subprocess

    subprocess.run([str(example), str(out)], check=True, capture_output=True)
    return out
