"""
D-Robotics BPU (RDK X3, RDK X5) through the board's own Python runtime, hobot_dnn.pyeasy_dnn.

The runtime is imported when the backend is made, not when this package is, so everything else
imports on any machine. A file may pack several models (the toolchain's link step); each becomes
one named Model. What a tensor is comes from its ``properties`` (tensor_type, dtype, layout,
shape, scale_data): NV12 camera inputs become NV12-layout specs, the compiled batch is the fixed
batch, and integer outputs with scale data come back de-quantised to float32.

A pool of runtimes loads the file once per runtime. A vendor Model object owns one set of input
and output buffers, so calls on one object are serialised here; separate objects submit separate
BPU tasks, which the board's runtime runs concurrently (on the core ``cores`` assigns).
"""

from dataclasses import dataclass
from functools import partial
import importlib
import threading
from typing import Dict, List, Optional

from hobot_npu_infer.core.backends.base import (
    Backend,
    Inputs,
    Model,
    register_backend,
    require_file,
)
from hobot_npu_infer.core.backends.boards import bpu_load
from hobot_npu_infer.core.backends.tensors import BatchCapability, NV12, TensorSpec
from hobot_npu_infer.core.errors import BackendError, ConfigError, ModelLoadError, one_line
import numpy as np

RUNTIME_PACKAGES = ('hobot_dnn', 'hobot_dnn_rdkx5')  # board images; the RDK X5 wheel on PyPI
NV12_TYPES = ('NV12', 'NV12_SEPARATE')  # the same bytes from Python: the runtime splits planes
UNPREPARED_TYPES = ('Y', 'YUV444')
CHANNEL_AXIS = {'NCHW': 1, 'NHWC': 3}  # the C API's quantizeAxis of a per-channel scale
# The binding's message without its type (the text around names the failing call), cut short.
_reason = partial(one_line, named=False, limit=160)


def import_runtime():
    """Import the vendor module, under whichever name this board image ships it."""
    reasons = []
    for package in RUNTIME_PACKAGES:
        try:
            return importlib.import_module(f'{package}.pyeasy_dnn')
        except ImportError as exc:
            reasons.append(str(exc))
    raise BackendError('backend hobot needs the BPU runtime hobot_dnn.pyeasy_dnn (or '
                       'hobot_dnn_rdkx5), which ships with RDK X3/X5 board images; it is not '
                       f'installed here ({reasons[0]}). Use backend onnxruntime with an .onnx '
                       f'model on this machine')


def _dtype(properties, what: str) -> np.dtype:
    try:
        return np.dtype(properties.dtype)
    except TypeError:
        raise ModelLoadError(f'{what} has element type {properties.dtype}, which this backend '
                             f'cannot hold') from None


def _layout(properties) -> Optional[str]:
    return properties.layout if properties.layout in CHANNEL_AXIS else None


def _input_spec(tensor, model: str) -> TensorSpec:
    props = tensor.properties
    shape = tuple(int(d) for d in props.shape)
    what = f'model {model} input {tensor.name}'
    if props.tensor_type in NV12_TYPES:
        h, w = shape[2:4] if props.layout == 'NCHW' else shape[1:3]
        return TensorSpec(tensor.name, (shape[0], h * 3 // 2, w), np.dtype(np.uint8), NV12)
    if props.tensor_type in UNPREPARED_TYPES:
        raise ModelLoadError(f'{what} takes {props.tensor_type} images, which this backend does '
                             f'not prepare (it prepares NV12, RGB, BGR and feature maps)')
    return TensorSpec(tensor.name, shape, _dtype(props, what), _layout(props))


@dataclass(frozen=True)
class _Output:
    spec: TensorSpec  # as run() returns it: float32 when the runtime's tensor is quantised
    scale: Optional[np.ndarray]  # broadcasts over the raw tensor; None when not quantised

    def convert(self, buffer) -> np.ndarray:
        raw = np.asarray(buffer)
        if raw.size != int(np.prod(self.spec.shape)):
            raise BackendError(f'output {self.spec.name} came back with {raw.size} values; its '
                               f'shape {list(self.spec.shape)} holds {np.prod(self.spec.shape)}')
        raw = raw.reshape(self.spec.shape)
        if self.scale is None:
            return raw
        return np.multiply(raw, self.scale, dtype=np.float32)  # zero points are 0 on the BPU


def _output(tensor, model: str) -> _Output:
    props = tensor.properties
    shape = tuple(int(d) for d in props.shape)
    what = f'model {model} output {tensor.name}'
    dtype, layout = _dtype(props, what), _layout(props)
    # A copy: the binding's scale_data is a view of memory the runtime owns.
    scale = np.array(props.scale_data, np.float32).reshape(-1)
    if scale.size == 0 or dtype.kind == 'f':
        return _Output(TensorSpec(tensor.name, shape, dtype, layout), None)
    if scale.size > 1:
        axis = CHANNEL_AXIS.get(layout, len(shape) - 1)
        if shape[axis] != scale.size:
            raise ModelLoadError(f'{what} has {scale.size} scale values but {shape[axis]} '
                                 f'channels on its quantisation axis {axis} (layout '
                                 f'{props.layout}, shape {list(shape)})')
        scale = scale.reshape([-1 if i == axis else 1 for i in range(len(shape))])
    return _Output(TensorSpec(tensor.name, shape, np.dtype(np.float32), layout), scale)


class HobotModel(Model):

    def __init__(self, model, core_id: int, priority: int):
        self.name = model.name
        self._model = model
        self.inputs = [_input_spec(t, self.name) for t in model.inputs]
        self._outputs = [_output(t, self.name) for t in model.outputs]
        self.outputs = [o.spec for o in self._outputs]
        self.batch = BatchCapability(self.inputs[0].static_dim(0))
        self._options = {'core_id': core_id, 'priority': priority}
        self._lock = threading.Lock()

    def run(self, inputs: Inputs) -> List[np.ndarray]:
        feeds = self.input_dict(inputs)
        arrays = [self._array(spec, feeds) for spec in self.inputs]
        with self._lock:
            try:
                outputs = self._model.forward(arrays[0] if len(arrays) == 1 else arrays,
                                              **self._options)
            except Exception as exc:  # whatever the binding's C code raises
                raise BackendError(f'model {self.name}: BPU forward failed: {_reason(exc)}') \
                    from None
            if outputs is None:  # how the binding reports a failed hbDNNInfer
                raise BackendError(f'model {self.name}: BPU forward failed (the runtime '
                                   f'returned no outputs)')
            buffers = [t.buffer for t in outputs]  # copies, read before the next run reuses them
        return [o.convert(b) for o, b in zip(self._outputs, buffers)]

    def _array(self, spec: TensorSpec, feeds) -> np.ndarray:
        if spec.name not in feeds:
            raise BackendError(f'model {self.name} needs input {spec.name}; got '
                               f'{", ".join(feeds) or "none"}')
        array = np.ascontiguousarray(feeds[spec.name], dtype=spec.dtype)
        if array.shape != spec.shape:
            raise BackendError(f'model {self.name} input {spec.name} takes shape '
                               f'{list(spec.shape)}, got {list(array.shape)}')
        # NV12 goes as (B*H*3/2, W) rows: the binding sizes an image copy as dims[0] * dims[1].
        return array.reshape(-1, array.shape[-1]) if spec.layout == NV12 else array


@register_backend('hobot')
class HobotBackend(Backend):
    """
    Hobot BPU backend, with the options ``cores`` and ``priority``.

    ``cores``: 0 lets the runtime place every run; 1 or 2 pins runtime i of a pool to BPU core
    i % cores (RDK X3 has two cores, X5 one). ``priority``: 0..255, higher runs first.
    """

    def __init__(self, cores: int = 0, priority: int = 0):
        if type(cores) is not int or cores not in (0, 1, 2):
            raise ConfigError(f'backend hobot option cores must be 0 (the runtime places each '
                              f'run), 1 or 2 (runtimes spread over that many BPU cores), got '
                              f'{cores!r}')
        if type(priority) is not int or not 0 <= priority <= 255:
            raise ConfigError(f'backend hobot option priority must be an integer within 0..255, '
                              f'got {priority!r}')
        self.cores, self.priority = cores, priority
        self._dnn = import_runtime()

    def npu_load(self) -> Optional[Dict[str, float]]:
        return bpu_load()

    def load(self, path: str, runtime: int = 0) -> List[Model]:
        require_file(path)
        try:
            models = self._dnn.load(path)
        except Exception as exc:  # the binding raises RuntimeError for a file it cannot use
            raise ModelLoadError(f'cannot load model {path}: the BPU runtime rejected it '
                                 f'({_reason(exc)})') from None
        if not models:
            raise ModelLoadError(f'cannot load model {path}: the BPU runtime found no model in it')
        core_id = runtime % self.cores + 1 if self.cores else 0  # forward's core_id: 0 is any
        return [HobotModel(model, core_id, self.priority) for model in models]
