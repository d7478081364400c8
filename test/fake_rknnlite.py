"""
A fake of rknn-toolkit-lite2's ``rknnlite.api.RKNNLite``, for tests off a Rockchip board.

It keeps to the documented interface (rknn-toolkit-lite2's API, the same as rknn-toolkit2's
``RKNN`` for these calls; ../shared/reference/npu-runtimes.md):

- ``RKNNLite(verbose=False, verbose_file=None)``; the core-mask constants NPU_CORE_AUTO=0,
  NPU_CORE_0=1, NPU_CORE_1=2, NPU_CORE_2=4, NPU_CORE_0_1=3, NPU_CORE_0_1_2=7, NPU_CORE_ALL=0xffff.
- ``load_rknn(path)``: 0 on success, -1 on failure (a missing file, or one that is not an RKNN
  model: the real files start with the magic ``RKNN``).
- ``init_runtime(core_mask=NPU_CORE_AUTO)``: 0 or -1; -1 before a model is loaded, for a mask
  that is none of the constants, or for one naming an NPU core the chip lacks (``chip_cores``).
- ``inference(inputs, data_format=None, inputs_pass_through=None, get_frame_id=False)``: a list
  of numpy outputs, or None on any error (the runtime logs the cause and returns None, it does
  not raise): a wrong input count, an input whose shape is not the compiled one, a call before
  init_runtime or after release, or a fault the test injects (``faults['inference']``).
  ``data_format`` is one of 'nhwc' / 'nchw' or a list of them, one per input; 'nhwc' by default.
- ``release()``.

The fake stands in for a runtime that knows the model's graph from the compiled file. It takes
the graph from the tensor table rknn-toolkit2 writes into a real .rknn file (read here with its
own parser, not the backend's), under the key ``'attrs'``; a test hides the table from the code
under test by renaming that key to ``'attrz'``, which the fake still reads. The table lists
tensors at batch 1 (inputs in NCHW); a file's compiled batch (rknn_batch_size) is not in it, so a
test states it in ``compiled_batch`` by path (1 when not stated). Input i of a run is checked
against (batch, H, W, C); output k of image b is filled with ``mean(image b) / 255 + k``, so a
test sees that its own pixels reached the NPU.
"""

import ast
import os
import re
import sys
import threading
from typing import Dict, List, Optional

import numpy as np

chip_cores = 3  # NPU cores of the fake board's chip (RK3588: 3, RK3576: 2, RK356x: 1)
compiled_batch: Dict[str, int] = {}  # realpath of a .rknn file -> its rknn_batch_size
faults = {'inference': False}  # True: inference fails (returns None), as on an NPU fault
instances: List['RKNNLite'] = []  # every RKNNLite made, in order

_TABLE = re.compile(rb"\{'attr[sz]': \{")


def reset(cores: int = 3) -> None:
    global chip_cores
    chip_cores = cores
    compiled_batch.clear()
    faults['inference'] = False
    instances.clear()


def _graph(path: str) -> Optional[dict]:
    """Read {'inputs': [(name, (1, C, H, W))], 'outputs': [(name, shape)]} of a file, or None."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError:
        return None
    if not data.startswith(b'RKNN'):
        return None
    found = _TABLE.search(data)
    if found is None:
        return None
    depth = 0
    for end in range(found.start(), len(data)):
        depth += data[end] == ord('{')
        depth -= data[end] == ord('}')
        if depth == 0:
            break
    try:
        literal = ast.literal_eval(data[found.start():end + 1].decode())
    except (ValueError, SyntaxError, UnicodeDecodeError):
        return None
    table = next(iter(literal.values()))
    tensors = sorted(((attr['idx'], bool(attr.get('is_output')), name, tuple(attr['shape']))
                      for name, attr in table.items()), key=lambda t: (t[1], t[0]))
    return {'inputs': [(n, s) for _, out, n, s in tensors if not out],
            'outputs': [(n, s) for _, out, n, s in tensors if out]}


class RKNNLite:
    NPU_CORE_AUTO = 0x0
    NPU_CORE_0 = 0x1
    NPU_CORE_1 = 0x2
    NPU_CORE_2 = 0x4
    NPU_CORE_0_1 = 0x3
    NPU_CORE_0_1_2 = 0x7
    NPU_CORE_ALL = 0xffff

    def __init__(self, verbose=False, verbose_file=None):
        self.verbose, self.verbose_file = verbose, verbose_file
        self.path = ''
        self.core_mask: Optional[int] = None  # set by a successful init_runtime
        self.released = False
        self.calls: List[dict] = []  # each inference: input shapes and dtypes, data_format
        self._graph: Optional[dict] = None
        self._batch = 1
        instances.append(self)

    def load_rknn(self, path):
        graph = _graph(path)
        if graph is None or not graph['inputs'] or not graph['outputs']:
            print(f'E load_rknn: {path} is not a valid RKNN model')
            return -1
        self.path, self._graph = path, graph
        self._batch = compiled_batch.get(os.path.realpath(path), 1)
        return 0

    def init_runtime(self, core_mask=NPU_CORE_AUTO):
        masks = (self.NPU_CORE_AUTO, self.NPU_CORE_0, self.NPU_CORE_1, self.NPU_CORE_2,
                 self.NPU_CORE_0_1, self.NPU_CORE_0_1_2, self.NPU_CORE_ALL)
        if self._graph is None:
            print('E init_runtime: no model loaded')
            return -1
        if core_mask not in masks or (core_mask != self.NPU_CORE_ALL
                                      and core_mask >> chip_cores):
            print(f'E init_runtime: invalid core mask {core_mask} for a {chip_cores}-core NPU')
            return -1
        self.core_mask = core_mask
        return 0

    def inference(self, inputs, data_format=None, inputs_pass_through=None,
                  get_frame_id=False):
        if self._graph is None or self.core_mask is None or self.released:
            print('E inference: the runtime is not initialised')
            return None
        specs = self._graph['inputs']
        if not isinstance(inputs, (list, tuple)) or len(inputs) != len(specs):
            print(f'E inference: the model takes {len(specs)} input(s)')
            return None
        formats = data_format if isinstance(data_format, (list, tuple)) else \
            [data_format or 'nhwc'] * len(inputs)
        self.calls.append({'shapes': [np.shape(a) for a in inputs],
                           'dtypes': [np.asarray(a).dtype for a in inputs],
                           'data_format': data_format, 'thread': threading.current_thread().name})
        if faults['inference']:
            print('E inference: failed to submit the task (NPU timeout)')
            return None
        images = []
        for array, fmt, (name, (_, c, h, w)) in zip(inputs, formats, specs):
            array = np.asarray(array)
            if fmt == 'nchw' and array.ndim == 4:
                array = array.transpose(0, 2, 3, 1)
            if array.shape != (self._batch, h, w, c):
                print(f'E inference: input {name} wants {(self._batch, h, w, c)}, got '
                      f'{array.shape}')
                return None
            images.append(array)
        means = images[0].reshape(self._batch, -1).astype(np.float64).mean(axis=1) / 255
        outputs = []
        for k, (_, shape) in enumerate(self._graph['outputs']):
            out = np.empty((self._batch, *shape[1:]), np.float32)
            out[...] = (means + k).reshape((-1,) + (1,) * (len(shape) - 1))
            outputs.append(out)
        return outputs

    def release(self):
        self.released = True


def installed(tmp_path, monkeypatch):
    """
    Make this fake importable as ``rknnlite.api`` for one test, and return this module.

    It is imported from a package on sys.path, so find_spec sees it as the backend checks it.
    Call :func:`uninstalled` when the test ends.
    """
    package = tmp_path / 'site' / 'rknnlite'
    package.mkdir(parents=True)
    (package / '__init__.py').write_text('')
    (package / 'api.py').write_text('from fake_rknnlite import RKNNLite  # noqa: F401\n')
    for name in ('rknnlite', 'rknnlite.api'):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / 'site'))
    reset(cores=3)
    return sys.modules[__name__]


def uninstalled() -> None:
    """Forget the fake's modules and its state."""
    for name in ('rknnlite', 'rknnlite.api'):
        sys.modules.pop(name, None)
    reset()
