"""
ONNX Runtime: the default backend, on every machine.

Sessions are configured for a robot that shares its CPU: thread pools do not spin while idle,
and the thread counts are explicit.
"""

import os
from typing import List, Sequence, Union

from hobot_npu_infer.core.backends.base import (
    Backend,
    Inputs,
    Model,
    register_backend,
    require_file,
)
from hobot_npu_infer.core.backends.tensors import BatchCapability, guess_layout, TensorSpec
from hobot_npu_infer.core.errors import BackendError, ModelLoadError, one_line
from hobot_npu_infer.core.telemetry.thread_cpu import name_new_threads, thread_ids
import numpy as np

_ORT_DTYPES = {
    'tensor(float)': np.float32, 'tensor(float16)': np.float16, 'tensor(double)': np.float64,
    'tensor(uint8)': np.uint8, 'tensor(int8)': np.int8, 'tensor(int16)': np.int16,
    'tensor(int32)': np.int32, 'tensor(int64)': np.int64, 'tensor(bool)': np.bool_,
}


def _spec(arg) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in arg.shape)
    return TensorSpec(arg.name, shape, np.dtype(_ORT_DTYPES.get(arg.type, np.float32)),
                      guess_layout(shape))


class OnnxRuntimeModel(Model):

    def __init__(self, name: str, session):
        self.name = name
        self._session = session
        self.inputs = [_spec(a) for a in session.get_inputs()]
        self.outputs = [_spec(a) for a in session.get_outputs()]
        first = self.inputs[0]
        self.batch = BatchCapability(None if first.is_dynamic(0) else first.static_dim(0))
        self._output_names = [o.name for o in self.outputs]

    @property
    def providers(self) -> List[str]:
        return self._session.get_providers()

    def run(self, inputs: Inputs) -> List[np.ndarray]:
        # InferenceSession.run releases the GIL, so pre-processing overlaps it in other threads.
        return self._session.run(self._output_names, self.input_dict(inputs))


@register_backend('onnxruntime')
class OnnxRuntimeBackend(Backend):
    def __init__(self, providers: Union[str, Sequence[str], None] = None,
                 intra_op_threads: int = 0, inter_op_threads: int = 1,
                 allow_spinning: bool = False, log_severity: int = 3):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(f'backend onnxruntime is not installed: {exc}') from None
        self._ort = ort
        if isinstance(providers, str):
            providers = [p for p in providers.split(',') if p]
        providers = list(providers or ['CPUExecutionProvider'])
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing:
            raise BackendError(f'onnxruntime provider(s) {", ".join(missing)} not installed; '
                               f'available: {", ".join(available)}')
        if intra_op_threads < 0 or inter_op_threads < 0:
            raise BackendError('onnxruntime thread counts must be >= 0 (0 means one per core)')
        self.providers = providers
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = log_severity
        spin = '1' if allow_spinning else '0'
        options.add_session_config_entry('session.intra_op.allow_spinning', spin)
        options.add_session_config_entry('session.inter_op.allow_spinning', spin)
        self.session_options = options

    def load(self, path: str, runtime: int = 0) -> List[Model]:
        require_file(path)
        before = thread_ids()
        try:
            session = self._ort.InferenceSession(path, sess_options=self.session_options,
                                                 providers=self.providers)
        except Exception as exc:  # ORT raises several pybind types for unusable files
            raise ModelLoadError(f'cannot load model {path}: not a valid ONNX model '
                                 f'({one_line(exc, named=False, limit=160)})') from None
        name_new_threads(before, 'ort')  # its thread pool, told apart in top -H and benchmarks
        return [OnnxRuntimeModel(os.path.splitext(os.path.basename(path))[0], session)]
