"""
What a model file says about itself: an export's metadata and its output shapes.

Every Ultralytics export writes its task, class names, input size, stride, keypoint shape and
whether NMS is inside into the ONNX file's metadata; ``rknn_convert`` copies that metadata into
the record it writes beside a ``.rknn`` file. Other files say nothing, and their outputs are read
once the backend has loaded them.
"""

import ast
from dataclasses import dataclass, field, replace
import os
from typing import Dict, List, Optional, Sequence, Tuple

from hobot_npu_infer.core.backends.rknn.model_file import read_build_record
from hobot_npu_infer.core.detection import TASKS
from hobot_npu_infer.core.models.onnx_files import read_onnx

Shape = Tuple[Optional[int], ...]  # None where a dimension is dynamic


@dataclass(frozen=True)
class ExportMetadata:
    """An Ultralytics export's description of itself; ``problems`` lists keys it could not read."""

    task: str = ''
    names: Tuple[str, ...] = ()
    imgsz: Optional[Tuple[int, int]] = None  # (W, H) the model was exported at
    stride: int = 0
    kpt_shape: Optional[Tuple[int, int]] = None  # keypoints, values per keypoint (x y [score])
    end2end: bool = False  # one-to-one head (YOLOv10, YOLO26): no NMS needed
    nms: bool = False  # exported with NMS inside
    batch: int = 0
    dynamic: bool = False
    problems: Tuple[str, ...] = ()

    @property
    def nms_inside(self) -> bool:
        """Whether the outputs are final detections ([B, N, 6 + extra]), with no NMS to run."""
        return self.end2end or self.nms


@dataclass(frozen=True)
class ModelFile:
    """A model file's own metadata (None when it has none) and output shapes (None: unread)."""

    path: str
    metadata: Optional[ExportMetadata] = None
    outputs: Optional[List[Tuple[str, Shape]]] = None
    raw_metadata: Dict[str, str] = field(default_factory=dict)

    def with_outputs(self, outputs: Sequence[Tuple[str, Shape]]) -> 'ModelFile':
        return replace(self, outputs=list(outputs))

    def describe_outputs(self) -> str:
        """Return the outputs as ``name [1,84,8400]``, for messages."""
        return ', '.join(f'{name} [{",".join("?" if d is None else str(d) for d in shape)}]'
                         for name, shape in self.outputs or ())


def _literal(text: str):
    return ast.literal_eval(text.strip())


def _flag(value) -> bool:
    return str(value).strip().lower() == 'true'


def parse_metadata(props: Dict[str, str]) -> Optional[ExportMetadata]:
    """Return Ultralytics' metadata from an export's key/value properties; None if absent."""
    if 'task' not in props and 'names' not in props:
        return None
    values: Dict[str, object] = {}
    problems: List[str] = []

    def read(key: str, convert) -> None:
        if key in props:
            try:
                values[key] = convert(props[key])
            except (ValueError, SyntaxError, TypeError, KeyError):
                problems.append(f'{key}={props[key][:40]!r}')

    def names(text: str) -> Tuple[str, ...]:
        parsed = _literal(text)
        if isinstance(parsed, dict):
            return tuple(str(parsed[i]) for i in range(len(parsed)))
        return tuple(str(n) for n in parsed)

    def size(text: str) -> Tuple[int, int]:
        parsed = _literal(text)
        h, w = (parsed, parsed) if isinstance(parsed, int) else (int(parsed[0]), int(parsed[-1]))
        return int(w), int(h)

    def pair(text: str) -> Tuple[int, int]:
        k, d = _literal(text)
        return int(k), int(d)

    task = props.get('task', 'detect').strip()
    if task not in TASKS:
        problems.append(f'task={task!r}')
    read('names', names)
    read('imgsz', size)
    read('stride', lambda t: int(float(t)))
    read('kpt_shape', pair)
    read('batch', int)
    read('args', lambda t: dict(_literal(t)))
    args = values.pop('args', {})
    return ExportMetadata(
        task=task if task in TASKS else '', names=values.get('names', ()),
        imgsz=values.get('imgsz'), stride=values.get('stride', 0),
        kpt_shape=values.get('kpt_shape'), end2end=_flag(props.get('end2end', False)),
        nms=_flag(args.get('nms', False)), batch=values.get('batch', 0),
        dynamic=_flag(args.get('dynamic', props.get('dynamic', False))),
        problems=tuple(problems))


def _onnx_shape(value_info) -> Shape:
    return tuple(d.dim_value if d.HasField('dim_value') and d.dim_value > 0 else None
                 for d in value_info.type.tensor_type.shape.dim)


def read_model_file(path: str) -> ModelFile:
    """
    Return what the file at ``path`` says about itself.

    An ONNX file gives its metadata and output shapes, a ``.rknn`` file the metadata its
    conversion recorded, any other file nothing (its outputs are read after loading).
    """
    extension = os.path.splitext(path)[1].lower()
    if extension == '.onnx':
        model = read_onnx(path, load_external_data=False)
        props = {p.key: p.value for p in model.metadata_props}
        outputs = [(o.name, _onnx_shape(o)) for o in model.graph.output]
        return ModelFile(path, parse_metadata(props), outputs, props)
    if extension == '.rknn':
        props = read_build_record(path).get('metadata') or {}
        props = {str(k): str(v) for k, v in dict(props).items()}
        return ModelFile(path, parse_metadata(props), None, props)
    return ModelFile(path)
