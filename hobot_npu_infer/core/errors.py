"""User-facing errors: each carries one line that names the problem and the file or value."""

from typing import Optional


class InferError(Exception):
    """
    Base of every error caused by the user's input rather than by a bug.

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


def one_line(exc: BaseException, named: bool = True, last: bool = False,
             limit: Optional[int] = 200) -> str:
    """
    Format the exception as one line for a message, a log or a diagnostic, never a traceback.

    ``Type: first line of the message`` cut to ``limit`` characters, or the type alone when the
    message is empty. ``named=False`` leaves the type out where the text around it already says
    what failed; ``last=True`` takes the last line instead, where tools that put a traceback
    into their messages (OpenCV) state the cause.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = (lines[-1] if last else lines[0])[:limit]
    return f'{type(exc).__name__}: {text}' if named else text
