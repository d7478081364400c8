"""
Choosing and configuring a backend.

``auto`` picks the board's NPU, and options given as ``key=value`` text (command line, ROS
string-array parameter) become typed keyword arguments.
"""

import importlib.util
from typing import Dict, Iterable, Mapping, Tuple

from hobot_npu_infer.core.backends.base import Backend, create_backend
from hobot_npu_infer.core.backends.boards import detect_board
from hobot_npu_infer.core.errors import ConfigError

AUTO = 'auto'


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def choose_backend(root: str = '/') -> Tuple[str, str]:
    """Return the backend ``auto`` means on this machine, and why, for the log."""
    board = detect_board(root)
    if board.vendor == 'd-robotics':
        if _importable('hobot_dnn') or _importable('hobot_dnn_rdkx5'):
            return 'hobot', f'D-Robotics BPU board ({board.evidence}) with pyeasy_dnn installed'
        return 'onnxruntime', (f'D-Robotics BPU board ({board.evidence}) but neither hobot_dnn '
                               f'nor hobot_dnn_rdkx5 imports')
    if board.vendor == 'rockchip':
        if _importable('rknnlite'):
            return 'rknn', f'Rockchip {board.soc.upper()} board ({board.evidence}) with rknnlite'
        return 'onnxruntime', (f'Rockchip {board.soc.upper()} board ({board.evidence}) but '
                               f'rknn-toolkit-lite2 (rknnlite) is not installed')
    return 'onnxruntime', f'no NPU board found ({board.evidence})'


def open_backend(name: str, options: Mapping[str, object], root: str = '/'
                 ) -> Tuple[Backend, str]:
    """Open backend ``name`` (``auto`` chosen here) with ``options``, and say which in a line."""
    note = f'backend {name}'
    if name == AUTO:
        name, reason = choose_backend(root)
        note = f'backend auto chose {name}: {reason}'
    return create_backend(name, **_for(name, options)), note


def with_input_size(options: Mapping[str, object], size) -> Dict[str, object]:
    """
    Pass the pipeline's input size (W, H) on to rknn, which builds an .onnx model at one size.

    That fixed size is the one images are prepared at. An input_size option of its own wins.
    """
    options = dict(options)
    if size is not None and not {'input_size', 'rknn.input_size'} & set(options):
        options['rknn.input_size'] = f'{size[0]}x{size[1]}'
    return options


def with_normalisation(options: Mapping[str, object], preprocess) -> Dict[str, object]:
    """
    Pass the pipeline's normalisation on to rknn, which builds it into the model it compiles.

    ``(pixel * scale - mean) / std`` is rknn's ``(pixel - mean / scale) / (std / scale)``; the
    pixels arrive as uint8 in the pipeline's channel order. Options of its own win.
    """
    options = dict(options)
    scale = preprocess.scale
    given = set(options)
    if not {'mean', 'rknn.mean', 'std', 'rknn.std'} & given:
        options['rknn.mean'] = [m / scale for m in preprocess.mean]
        options['rknn.std'] = [s / scale for s in preprocess.std]
    if not {'channel_order', 'rknn.channel_order'} & given:
        options['rknn.channel_order'] = preprocess.channel_order
    return options


def _for(chosen: str, options: Mapping[str, object]) -> Dict[str, object]:
    """Keys written ``backend.key`` apply only when that backend is chosen; plain keys always."""
    out = {}
    for key, value in options.items():
        prefix, dot, rest = key.partition('.')
        if not dot:
            out[key] = value
        elif prefix == chosen:
            out[rest] = value
    return out


def parse_options(items: Iterable[str]) -> Dict[str, object]:
    """['batch_size=4', 'quantize=true', 'mean=0,0,0'] -> typed keyword arguments."""
    options: Dict[str, object] = {}
    for item in items:
        key, eq, text = str(item).partition('=')
        key = key.strip()
        if not eq or not key:
            raise ConfigError(f'option {item!r} is not key=value')
        options[key] = _value(text.strip())
    return options


def _value(text: str):
    if text.lower() in ('true', 'false'):
        return text.lower() == 'true'
    if ',' in text and all(_number(p) is not None for p in text.split(',')):
        return [_number(p) for p in text.split(',')]
    number = _number(text)
    return text if number is None else number


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None
