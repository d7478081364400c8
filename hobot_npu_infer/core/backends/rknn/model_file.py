"""
What a .rknn file says about itself, and what rknn_convert records beside it.

rknnlite's Python API cannot query a loaded model's inputs, but the toolkit writes a table of
every input and output (name, shape, layout) into the file as a Python literal. It is read here
so a board needs no extra settings; input_size overrides it where a file lacks the table.
The table does not hold the compiled batch (rknn_batch_size), so rknn_convert writes it to
``<file>.rknn.json`` beside the model.
"""

import ast
from dataclasses import dataclass
import json
import mmap
import os
from typing import Dict, List, Tuple

from hobot_npu_infer.core.models.builtin_models import atomic_write

_MARKER = b"{'attrs': {"


@dataclass(frozen=True)
class RknnTensor:
    name: str
    index: int
    shape: Tuple[int, ...]
    layout: str  # 'nchw' or 'nhwc', as the file says

    @property
    def image_size(self) -> Tuple[int, int]:
        """(W, H) of a 4-D image tensor."""
        if self.layout == 'nhwc':
            return self.shape[2], self.shape[1]
        return self.shape[3], self.shape[2]


def _literal_at(data, start: int) -> str:
    """Return the balanced {...} literal at ``start`` (strings hold no braces here)."""
    depth = 0
    for end in range(start, min(len(data), start + (1 << 22))):
        char = data[end]
        depth += char == ord('{')
        depth -= char == ord('}')
        if depth == 0:
            return data[start:end + 1].decode(errors='replace')
    raise ValueError('unterminated attribute table')


def read_rknn_tensors(path: str, outputs: bool) -> List[RknnTensor]:
    """
    Return the file's inputs (or outputs) in index order.

    Empty when the table is absent or garbled.
    """
    try:
        with open(path, 'rb') as file, mmap.mmap(file.fileno(), 0,
                                                 access=mmap.ACCESS_READ) as data:
            start = data.find(_MARKER)
            if start < 0:
                return []
            table = ast.literal_eval(_literal_at(data, start))['attrs']
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, MemoryError):
        return []
    tensors = [RknnTensor(name, int(attr.get('idx', 0)), tuple(int(d) for d in attr['shape']),
                          str(attr.get('layout', 'nchw')).lower())
               for name, attr in table.items()
               if isinstance(attr, dict) and bool(attr.get('is_output')) == outputs
               and 'shape' in attr]
    return sorted(tensors, key=lambda t: t.index)


def _record_path(path: str) -> str:
    return path + '.json'


def write_build_record(path: str, record: Dict[str, object]) -> None:
    atomic_write(os.path.abspath(_record_path(path)), json.dumps(record, indent=2).encode())


def read_build_record(path: str) -> Dict[str, object]:
    """
    Return the record rknn_convert wrote beside ``path``.

    Empty when there is none or it is garbled.
    """
    try:
        with open(_record_path(path)) as file:
            record = json.load(file)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}
