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
