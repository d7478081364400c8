"""
The rknn-toolkit2 simulator, served over a pipe from the toolkit's own Python environment.

rknn-toolkit2 needs numpy<2 and torch, so it lives in an environment of its own (made by
``make rknn-sim``); the node runs this file there as a script and talks to it through stdin and
stdout. Only the standard library, numpy and the toolkit are imported here, never this package.
The same :class:`SimulatorSession` also runs in-process when the toolkit is importable.

Wire format, both ways: a 4-byte little-endian length, a JSON header, then the raw bytes of the
arrays the header lists (dtype and shape each). JSON and raw bytes, not pickle, because numpy 1
cannot unpickle numpy 2 arrays.
"""

import json
import os
import struct
import sys
import tempfile
from typing import BinaryIO, Dict, List, Optional, Sequence, Tuple

import numpy as np

_LENGTH = struct.Struct('<I')


def send_message(stream: BinaryIO, header: Dict, arrays: Sequence[np.ndarray] = ()) -> None:
    arrays = [np.ascontiguousarray(a) for a in arrays]
    header = dict(header, arrays=[[a.dtype.str, list(a.shape)] for a in arrays])
    encoded = json.dumps(header).encode()
    stream.write(_LENGTH.pack(len(encoded)) + encoded)
    for array in arrays:
        stream.write(memoryview(array).cast('B'))
    stream.flush()


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise EOFError('the rknn simulator process closed its pipe')
    return data


def receive_message(stream: BinaryIO) -> Tuple[Dict, List[np.ndarray]]:
    (length,) = _LENGTH.unpack(_read_exact(stream, _LENGTH.size))
    header = json.loads(_read_exact(stream, length))
    arrays = []
    for dtype, shape in header.pop('arrays', []):
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        arrays.append(np.frombuffer(_read_exact(stream, count * dtype.itemsize), dtype)
                      .reshape(shape))
    return header, arrays


def _fixed_onnx(path: str, size: Tuple[int, int], known: Dict[str, List[int]],
                directory: str) -> Tuple[str, Dict[str, List[int]], List[str]]:
    """
    Fix every dynamic input dimension of the model (the simulator builds static graphs).

    An input named in ``known`` (a trunk's output, read by a head) is fixed to that shape, any
    other to batch 1 and an image's height and width to ``size``; outputs are left for the
    toolkit to infer. Returns the path it wrote, the fixed input shapes (batch 1: the toolkit's
    rknn_batch_size multiplies it) and the output names.
    """
    import onnx
    model = onnx.load(path)
    initialisers = {i.name for i in model.graph.initializer}
    shapes = {}
    for tensor in model.graph.input:
        if tensor.name in initialisers:
            continue
        dims = tensor.type.tensor_type.shape.dim
        fill = [1, None, size[1], size[0]] if len(dims) == 4 else [1] * len(dims)
        if tensor.name in known:
            fill = [1] + list(known[tensor.name][1:])
        for i, dim in enumerate(dims):
            if i == 0 or not dim.HasField('dim_value') or dim.dim_value <= 0:
                if fill[i] is None:
                    raise ValueError(f'input {tensor.name} has a dynamic channel dimension')
                dim.Clear()
                dim.dim_value = fill[i]
        shapes[tensor.name] = [d.dim_value for d in dims]
    for tensor in model.graph.output:
        for i, dim in enumerate(tensor.type.tensor_type.shape.dim):
            if not dim.HasField('dim_value'):
                dim.Clear()
                dim.dim_param = f'{tensor.name}_d{i}'
    del model.graph.value_info[:]
    fixed = os.path.join(directory, 'fixed.onnx')
    onnx.save(model, fixed)
    return fixed, shapes, [o.name for o in model.graph.output]


def is_image(shape: Sequence[int]) -> bool:
    """
    Tell whether an input is an image: a 3-channel NCHW one is.

    An image is fed NHWC uint8 with mean/std folded in; any other input (a trunk's features,
    read by a head) is fed as it is, float32 NCHW.
    """
    return len(shape) == 4 and shape[1] == 3


class SimulatorSession:
    """One model built from ONNX by the toolkit and run in its simulator."""

    def __init__(self):
        self._rknn = None
        self._directory = tempfile.TemporaryDirectory(prefix='hobot-npu-rknn-')
        self.output_names: List[str] = []
        self.formats: List[str] = []  # data_format of each input: nhwc images, nchw features

    def build(self, onnx_path: str, target: str, quantize: bool, dataset: Optional[str],
              batch_size: int, input_size: Tuple[int, int], mean: Sequence[float],
              std: Sequence[float], export_path: str = '',
              known_shapes: Optional[Dict[str, List[int]]] = None) -> Dict:
        from rknn.api import RKNN
        fixed, shapes, self.output_names = _fixed_onnx(
            onnx_path, tuple(input_size), known_shapes or {}, self._directory.name)
        images = [is_image(shape) for shape in shapes.values()]
        if quantize and not all(images):
            raise ValueError('int8 calibration takes images; build a model that reads '
                             'features (a head of a split) in fp16')
        rknn = RKNN(verbose=False)
        self._rknn = rknn
        _check(rknn.config(
            target_platform=target,
            mean_values=[list(mean) if image else [0.0] * shape[1]
                         for image, shape in zip(images, shapes.values())],
            std_values=[list(std) if image else [1.0] * shape[1]
                        for image, shape in zip(images, shapes.values())]), 'config')
        _check(rknn.load_onnx(fixed), 'load_onnx')
        _check(rknn.build(do_quantization=quantize, dataset=dataset if quantize else None,
                          rknn_batch_size=batch_size if batch_size > 1 else None), 'build')
        if export_path:  # the .rknn file a board runs
            _check(rknn.export_rknn(export_path), 'export_rknn')
        _check(rknn.init_runtime(), 'init_runtime')
        inputs = []
        for (name, shape), image in zip(shapes.items(), images):
            fed = [batch_size, shape[2], shape[3], 3] if image else [batch_size] + shape[1:]
            inputs.append({'name': name, 'shape': fed, 'dtype': 'uint8' if image else 'float32',
                           'layout': 'NHWC' if image else ('NCHW' if len(shape) == 4 else '')})
        self.formats = ['nhwc' if image else 'nchw' for image in images]
        outputs = self.run([np.zeros(i['shape'], i['dtype']) for i in inputs])
        return {'inputs': inputs,
                'outputs': [{'name': n, 'shape': list(o.shape), 'dtype': o.dtype.str}
                            for n, o in zip(self.output_names, outputs)]}

    def run(self, inputs: List[np.ndarray]) -> List[np.ndarray]:
        outputs = self._rknn.inference(inputs=list(inputs), data_format=self.formats)
        if outputs is None:  # the toolkit logs its error and returns None
            raise RuntimeError('rknn inference returned no outputs (see the simulator log)')
        return [np.asarray(o) for o in outputs]

    def close(self) -> None:
        if self._rknn is not None:
            self._rknn.release()
            self._rknn = None
        self._directory.cleanup()


def _check(code: int, step: str) -> None:
    if code != 0:
        raise RuntimeError(f'rknn {step} failed with code {code} (see the simulator log)')


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer build/run/close requests until close or end of input; errors become replies."""
    session = SimulatorSession()
    try:
        while True:
            try:
                header, arrays = receive_message(requests)
            except EOFError:
                return
            op = header.get('op')
            try:
                if op == 'build':
                    send_message(replies, {'ok': True, **session.build(**header['args'])})
                elif op == 'run':
                    send_message(replies, {'ok': True}, session.run(arrays))
                elif op == 'close':
                    send_message(replies, {'ok': True})
                    return
                else:
                    send_message(replies, {'ok': False, 'error': f'unknown request {op!r}'})
            except Exception as exc:  # every failure goes back to the caller as one line
                # The toolkit's messages carry a traceback; the cause is on their last line.
                text = str(exc).strip().splitlines()
                send_message(replies, {'ok': False,
                                       'error': text[-1] if text else type(exc).__name__})
    finally:
        session.close()


def main() -> None:
    # The toolkit prints its log on stdout: keep the real stdout for replies, log to stderr.
    replies = os.fdopen(os.dup(1), 'wb')
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, replies)


if __name__ == '__main__':
    main()
