"""Inference backends behind one interface; importing this package registers the built-in ones."""

from .base import Backend, Model, backend_names, create_backend, register_backend
from . import onnxruntime_backend  # noqa: F401  (registers 'onnxruntime')
from . import hobot_backend  # noqa: F401  (registers 'hobot'; imports its runtime lazily)
from . import rknn_backend  # noqa: F401  (registers 'rknn')

__all__ = ['Backend', 'Model', 'backend_names', 'create_backend', 'register_backend']
