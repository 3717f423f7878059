"""The exceptions fresco raises: ``FrescoError`` at the base, one class per kind of
failure, each also the built-in exception a Python user would catch for it
(``except ValueError`` catches a refused input, ``except FileNotFoundError`` a model
path that does not exist).

The extension module raises these very classes (it looks them up here), so an
``except`` clause works the same for errors from Rust and from Python.
"""


class FrescoError(Exception):
    """Base class of every error fresco raises."""


class ModelError(FrescoError):
    """A model could not be loaded or scored."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model file that does not exist."""


class InputError(FrescoError, ValueError):
    """Input rows do not fit the model: wrong shape, a missing column, a required input
    missing, a value out of range."""


class InputTypeError(InputError, TypeError):
    """Input of a kind that cannot be scored (not numbers, not a table)."""


class CompileError(FrescoError, ValueError):
    """A LightGBM or XGBoost model could not be compiled."""


class HoldoutError(FrescoError, ValueError):
    """A holdout definition was refused."""


class AggregateError(FrescoError, ValueError):
    """Windowed-aggregate definitions, events or a backfill table were refused."""


class DatasetError(FrescoError, ValueError):
    """A training set could not be built."""
