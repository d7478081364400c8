"""Inference backends behind one interface; importing this package registers the built-in ones."""

# The backend modules are imported only to register the built-in backends.
from hobot_npu_infer.core.backends import hobot_backend, onnxruntime_backend  # noqa: F401
from hobot_npu_infer.core.backends.base import (
                                                Backend,
                                                backend_names,
                                                create_backend,
                                                Model,
                                                register_backend,
                                                select_model,
)
from hobot_npu_infer.core.backends.rknn import backend as rknn_backend  # noqa: F401

__all__ = ['Backend', 'Model', 'backend_names', 'create_backend', 'register_backend',
           'select_model']
