"""
A fake of the BPU runtime's Python module, ``hobot_dnn.pyeasy_dnn``, for tests off the board.

It keeps to the documented interface (D-Robotics RDK docs, "model inference interface"; the
binding's source, dnn_python.cpp; the C API's hbDNNTensorProperties):

- ``load(model_file)``: a path (or a list of paths) to a list of ``Model``, one per model in the
  file; a file the runtime cannot use raises RuntimeError('hbDNNInitializeFromFiles failed').
- ``Model``: ``name``, ``inputs`` and ``outputs`` (lists of ``pyDNNTensor``), ``estimate_latency``
  and ``forward(args, core_id=0, priority=0)``, where ``args`` is one numpy array (one input) or a
  list of them. The runtime copies each input's bytes into its own tensor memory, so any array
  with the right number of bytes will do; forward returns the output ``pyDNNTensor`` list, or
  None when the run fails (the binding prints the failure and returns None).
- ``pyDNNTensor``: ``properties``, ``buffer`` (a numpy array copied out of the tensor memory at
  each read) and ``name``.
- ``TensorProperties``: ``tensor_type`` ('NV12', 'NV12_SEPARATE', 'Y', 'YUV444', 'RGB', 'BGR' for
  image inputs, else the element type: 'int8', 'int16', 'int32', 'float32', ...), ``dtype``
  ('uint8' for images, else as ``tensor_type``), ``layout`` ('NCHW', 'NHWC' or 'NONE'), ``shape``
  (a tuple; an NV12 input reports N, 3, H, W) and ``scale_data`` (float32, empty unless the tensor
  is quantised). A quantised output holds raw integers; raw * scale, per tensor or per channel
  along the channel axis (the C API's quantizeAxis), are the real values; zero points are 0.
  The C API's alignedShape, quantiType and quantizeAxis are not among the binding's getters: a
  tensor is quantised when it has scale data, as the vendor's samples test it.

The model file is JSON of these tests' own making::

    {"models": [{"name": "det", "latency_ms": 0,
                 "inputs": [{"name": "image", "tensor_type": "NV12", "layout": "NCHW",
                             "shape": [1, 3, 64, 64]}],
                 "outputs": [{"name": "heat", "tensor_type": "int8", "layout": "NCHW",
                              "shape": [1, 1, 16, 16], "scale_data": [0.0078125],
                              "op": {"kind": "luma_pool", "stride": 4, "gain": 1, "bias": 0}}]}]}

Each output's ``op`` computes real values per image from the first input, which the fake then
quantises as the BPU would (round, saturate): ``values`` (the raw buffer of one image, given
as is), ``constant`` (``value``: one number, or one per channel), ``channel_mean`` (the input's
mean per channel, NV12 counting as its Y plane) and ``luma_pool`` (the input's luma averaged
over ``stride`` x ``stride`` cells, the same in every channel); the last two are then times
``gain`` plus ``bias``. ``latency_ms`` is slept in forward, as a BPU task takes time.
"""

import json
import threading
import time
from typing import List

import numpy as np

IMAGE_TYPES = ('Y', 'NV12', 'NV12_SEPARATE', 'YUV444', 'RGB', 'BGR')
CHANNEL_AXIS = {'NCHW': 1, 'NHWC': 3}

loaded: List['Model'] = []  # every Model this module made, in order
_active = threading.Lock()
running = {'now': 0, 'most': 0}  # forward calls under way at once, across all models


class TensorProperties:

    def __init__(self, spec: dict):
        self.tensor_type = spec['tensor_type']
        self.dtype = 'uint8' if self.tensor_type in IMAGE_TYPES else self.tensor_type
        self.layout = spec.get('layout', 'NONE')
        self.shape = tuple(spec['shape'])
        self.scale_data = np.asarray(spec.get('scale_data', []), np.float32)


class pyDNNTensor:  # noqa: N801  (the vendor's name)

    def __init__(self, spec: dict, memory: np.ndarray):
        self.name = spec['name']
        self.properties = TensorProperties(spec)
        self._memory = memory

    @property
    def buffer(self) -> np.ndarray:
        return self._memory.copy()


def _input_bytes(props: TensorProperties) -> int:
    """Bytes of one input tensor, as the runtime allocates it."""
    n = props.shape[0]
    if props.tensor_type in ('NV12', 'NV12_SEPARATE'):
        h, w = props.shape[2:4] if props.layout == 'NCHW' else props.shape[1:3]
        return n * h * w * 3 // 2
    return int(np.prod(props.shape)) * np.dtype(props.dtype).itemsize


def _input_array(props: TensorProperties, data: bytes) -> np.ndarray:
    """Shape an input's bytes as the runtime reads them: NV12 as (N, H*3/2, W), else its shape."""
    if props.tensor_type in ('NV12', 'NV12_SEPARATE'):
        h, w = props.shape[2:4] if props.layout == 'NCHW' else props.shape[1:3]
        return np.frombuffer(data, np.uint8).reshape(props.shape[0], h * 3 // 2, w)
    return np.frombuffer(data, np.dtype(props.dtype)).reshape(props.shape)


def _luma(props: TensorProperties, image: np.ndarray) -> np.ndarray:
    """One image's luma plane, (H, W) float."""
    if props.tensor_type in ('NV12', 'NV12_SEPARATE'):
        return image[:image.shape[0] * 2 // 3].astype(np.float64)
    return image.astype(np.float64).mean(axis=CHANNEL_AXIS[props.layout] - 1)


def _channel_means(props: TensorProperties, image: np.ndarray) -> np.ndarray:
    if props.tensor_type in ('NV12', 'NV12_SEPARATE'):
        return np.array([_luma(props, image).mean()])
    spatial = (1, 2) if props.layout == 'NCHW' else (0, 1)
    return image.astype(np.float64).mean(axis=spatial)


class Model:

    def __init__(self, spec: dict):
        self.name = spec['name']
        self.estimate_latency = spec.get('latency_ms', 0)
        self._in = [pyDNNTensor(t, np.zeros(_input_bytes(TensorProperties(t)), np.uint8))
                    for t in spec['inputs']]
        self._out = []
        for t in spec['outputs']:
            props = TensorProperties(t)
            self._out.append(pyDNNTensor(t, np.zeros(props.shape, np.dtype(props.dtype))))
        self._ops = [t['op'] for t in spec['outputs']]
        self.forward_calls: List[dict] = []  # core_id, priority and thread of each run
        self.last_inputs: List[bytes] = []  # the bytes each input got in the last run

    @property
    def inputs(self) -> List[pyDNNTensor]:
        return list(self._in)

    @property
    def outputs(self) -> List[pyDNNTensor]:
        return list(self._out)

    def forward(self, args, core_id: int = 0, priority: int = 0):
        arrays = args if isinstance(args, list) else [args]
        if len(arrays) != len(self._in) or any(
                np.asarray(a).nbytes != t._memory.nbytes for a, t in zip(arrays, self._in)):
            print('hbDNNInfer failed')
            return None
        with _active:
            running['now'] += 1
            running['most'] = max(running['most'], running['now'])
        try:
            self.forward_calls.append({'core_id': core_id, 'priority': priority,
                                       'thread': threading.current_thread().name})
            for array, tensor in zip(arrays, self._in):
                tensor._memory[:] = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
            self.last_inputs = [t._memory.tobytes() for t in self._in]
            source = self._in[0].properties
            batch = _input_array(source, self.last_inputs[0])
            for op, tensor in zip(self._ops, self._out):
                tensor._memory[...] = self._compute(op, tensor.properties, source, batch)
            time.sleep(self.estimate_latency / 1e3)
        finally:
            with _active:
                running['now'] -= 1
        return self.outputs

    @staticmethod
    def _compute(op: dict, props: TensorProperties, source: TensorProperties,
                 batch: np.ndarray) -> np.ndarray:
        """Raw output values for the whole batch, quantised as the BPU stores them."""
        dtype = np.dtype(props.dtype)
        n = props.shape[0]
        if op['kind'] == 'values':
            return np.broadcast_to(np.asarray(op['data'], dtype).reshape((1, *props.shape[1:])),
                                   props.shape)
        axis = CHANNEL_AXIS.get(props.layout, len(props.shape) - 1)
        along = [1] * len(props.shape)
        along[axis] = -1
        real = np.zeros(props.shape)
        if op['kind'] == 'constant':
            real[...] = np.asarray(op['value'], np.float64).reshape(along if np.ndim(
                op['value']) else ())
        elif op['kind'] == 'channel_mean':
            for b in range(n):
                real[b] = _channel_means(source, batch[b]).reshape(along[1:])
        elif op['kind'] == 'luma_pool':
            s = op['stride']
            for b in range(n):
                luma = _luma(source, batch[b])
                pooled = luma.reshape(luma.shape[0] // s, s, luma.shape[1] // s, s).mean(
                    axis=(1, 3))
                real[b] = np.expand_dims(pooled, axis - 1)
        else:
            raise ValueError(f'unknown op {op["kind"]}')
        if op['kind'] != 'constant':
            real = real * op.get('gain', 1.0) + op.get('bias', 0.0)
        if props.scale_data.size:
            scale = props.scale_data.reshape(along if props.scale_data.size > 1 else ())
            real = real / scale
        if dtype.kind == 'f':
            return real.astype(dtype)
        info = np.iinfo(dtype)
        return np.clip(np.rint(real), info.min, info.max).astype(dtype)


def _read(model_file: str) -> List[dict]:
    try:
        with open(model_file) as f:
            return json.load(f)['models']
    except (OSError, ValueError, KeyError, TypeError):
        raise RuntimeError('hbDNNInitializeFromFiles failed') from None


def load(model_file) -> List[Model]:
    files = [model_file] if isinstance(model_file, str) else list(model_file)
    models = [Model(spec) for path in files for spec in _read(path)]
    loaded.extend(models)
    return models
