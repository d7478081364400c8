"""
Packed models: several named heads over shared computation, from either source.

(a) One multi-output ONNX file, split into a trunk and one sub-graph per head (graph_split):
    the trunk runs once per frame, each head on the trunk's features.
(b) A pack of separate model files, as Horizon's packed .bin/.hbm files and sets of .rknn files
    come: each head a model of its own, optionally after an explicit trunk model whose outputs
    feed the heads by tensor name. Without a trunk every head reads the image itself.
"""

from contextlib import contextmanager
from dataclasses import dataclass, field
import hashlib
import json
import os
from typing import Dict, Iterator, List, Optional

from hobot_npu_infer.core.backends import Backend, Model, select_model
from hobot_npu_infer.core.backends.tensors import TensorSpec
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.models.builtin_models import atomic_write, default_cache_dir, file_digest
from hobot_npu_infer.core.models.onnx_files import read_onnx
from hobot_npu_infer.core.multi_head.graph_split import HeadSpec, split_model
import numpy as np


class _Loaded(list):

    def add(self, model: Model) -> Model:
        self.append(model)
        return model


@contextmanager
def closed_on_failure() -> Iterator[_Loaded]:
    """
    Close the models added inside again when a later step fails.

    An NPU runtime (or the rknn simulator's process) holds each one until it is closed.
    """
    models = _Loaded()
    try:
        yield models
    except BaseException:
        for model in models:
            model.close()
        raise


@dataclass
class PackedHead:
    name: str
    model: Model
    inputs: List[str]  # feature names it reads: trunk outputs or the image input


@dataclass
class PackedModel:
    # The image input the trunk (or every head) reads.
    input: TensorSpec  # noqa: A003 (public field other code and tests use)
    heads: Dict[str, PackedHead]
    trunk: Optional[Model] = None
    cut_tensors: List[str] = field(default_factory=list)

    def features(self, tensor: np.ndarray) -> Dict[str, np.ndarray]:
        """
        Return what the heads read.

        The image tensor, and the trunk's outputs when there is one.
        """
        features = {self.input.name: tensor}
        if self.trunk is not None:
            outputs = self.trunk.run({self.input.name: tensor})
            features.update(zip((o.name for o in self.trunk.outputs), outputs))
        return features

    def input_batch_size(self) -> Optional[int]:
        """Return the compiled batch of the model reading the image; None when dynamic."""
        reader = self.trunk or next(iter(self.heads.values())).model
        return reader.batch.fixed_size

    def run_head(self, name: str, features: Dict[str, np.ndarray]) -> List[np.ndarray]:
        head = self.heads[name]
        return head.model.run({n: features[n] for n in head.inputs})


def _split_directory(path: str, heads: List[HeadSpec], cut_tensors: Optional[List[str]],
                     cache_dir: Optional[str]) -> str:
    spec = json.dumps([[h.name, list(h.outputs)] for h in heads] + [cut_tensors])
    key = hashlib.sha256((file_digest(path) + spec).encode()).hexdigest()[:16]
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(cache_dir or default_cache_dir(), f'{stem}-split-{key}')


def load_split(backend: Backend, path: str, heads: List[HeadSpec],
               cut_tensors: Optional[List[str]] = None,
               cache_dir: Optional[str] = None) -> PackedModel:
    """
    Load source (a): split ``path`` once and load the parts.

    The split is cached on disk beside the built-in models.
    """
    directory = _split_directory(path, heads, cut_tensors, cache_dir)
    names = ['trunk'] + [h.name for h in heads]
    if not all(os.path.isfile(os.path.join(directory, f'{n}.onnx')) for n in names[1:]):
        model = read_onnx(path)
        split = split_model(model, heads, cut_tensors)
        for name, part in split.parts().items():
            atomic_write(os.path.join(directory, f'{name}.onnx'), part.SerializeToString())
    trunk_path = os.path.join(directory, 'trunk.onnx')
    with closed_on_failure() as models:
        trunk = models.add(backend.load(trunk_path)[0]) if os.path.isfile(trunk_path) else None
        loaded = {h.name: models.add(backend.load(os.path.join(directory, f'{h.name}.onnx'))[0])
                  for h in heads}
    image = (trunk or next(iter(loaded.values()))).inputs[0]
    return PackedModel(
        image, {name: PackedHead(name, model, [s.name for s in model.inputs])
                for name, model in loaded.items()},
        trunk, [o.name for o in trunk.outputs] if trunk else [])


@dataclass
class HeadFile:
    name: str
    path: str
    model_name: str = ''  # one model of a packed file (Horizon .bin/.hbm with several models)


def _pick(models: List[Model], file: HeadFile) -> Model:
    return select_model(models, file.model_name, file.path, file.name)


def load_pack(backend: Backend, heads: List[HeadFile],
              trunk: Optional[HeadFile] = None) -> PackedModel:
    """
    (b): a head per file (or per model of a packed file), after an optional trunk model.

    Each file is loaded once, however many heads are models of it.
    """
    if not heads:
        raise ConfigError('a pack needs at least one head')
    files: Dict[str, List[Model]] = {}
    with closed_on_failure() as models:
        for file in ([trunk] if trunk else []) + heads:
            if file.path not in files:
                files[file.path] = [models.add(m) for m in backend.load(file.path)]
        return _assemble(files, heads, trunk)


def _assemble(files: Dict[str, List[Model]], heads: List[HeadFile],
              trunk: Optional[HeadFile]) -> PackedModel:
    trunk_model = _pick(files[trunk.path], trunk) if trunk else None
    loaded = {h.name: _pick(files[h.path], h) for h in heads}
    image = (trunk_model or next(iter(loaded.values()))).inputs[0]
    provided = {image.name} | ({o.name for o in trunk_model.outputs} if trunk_model else set())
    packed = {}
    for name, model in loaded.items():
        reads = [s.name for s in model.inputs]
        if trunk_model is None:
            reads = [image.name]  # every head reads the image, whatever its input is called
            if len(model.inputs) != 1:
                raise ConfigError(f'head {name} takes {len(model.inputs)} inputs; without a '
                                  f'trunk each head must take the image only')
            packed[name] = PackedHead(name, _Renamed(model, image.name), reads)
            continue
        missing = [r for r in reads if r not in provided]
        if missing:
            raise ConfigError(f'head {name} reads {", ".join(missing)}, which the trunk does not '
                              f'produce (it produces {", ".join(sorted(provided))})')
        packed[name] = PackedHead(name, model, reads)
    return PackedModel(image, packed, trunk_model,
                       [o.name for o in trunk_model.outputs] if trunk_model else [])


class _Renamed(Model):
    """A head model whose single input is fed under the image input's name."""

    def __init__(self, model: Model, name: str):
        self._model = model
        self.name, self.inputs, self.outputs, self.batch = \
            model.name, model.inputs, model.outputs, model.batch
        self._feed = name

    def run(self, inputs):
        return self._model.run([inputs[self._feed]])
