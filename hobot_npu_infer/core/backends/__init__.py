"""Inference backends behind one interface; importing this package registers the built-in ones."""

from hobot_npu_infer.core.backends import hobot_backend, onnxruntime_backend
from hobot_npu_infer.core.backends.base import (
                                                Backend,
                                                backend_names,
                                                create_backend,
                                                Model,
                                                register_backend,
                                                select_model,
)
from hobot_npu_infer.core.backends.rknn import backend as rknn_backend

__all__ = ['Backend', 'Model', 'backend_names', 'create_backend', 'register_backend',
           'select_model']
