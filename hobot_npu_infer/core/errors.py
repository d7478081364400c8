"""User-facing errors: each carries one line that names the problem and the file or value."""


class InferError(Exception):
    """Base of every error caused by the user's input rather than by a bug.

    Command-line tools print ``str(error)`` on one line and exit non-zero; nodes count it in
    diagnostics and keep serving.
    """


class ConfigError(InferError):
    """A parameter or configuration value is missing, of the wrong type or out of range."""


class ModelNotFoundError(InferError):
    """A model name is unknown, or a model file does not exist."""


class ModelLoadError(InferError):
    """A model file exists but the backend cannot load it (corrupt, wrong format)."""


class BackendError(InferError):
    """A backend is unknown, not installed, or failed while running a model."""


class ImageError(InferError):
    """An image cannot be read or decoded, or has a size or encoding we cannot use."""


class OutputLayoutError(InferError):
    """A model's outputs do not have the layout its decoder expects."""
