"""
What a model runs with: what the configuration gives, else what the file says, else its shapes.

An Ultralytics export needs nothing but its path: its metadata gives the task (so the
decoder), the class names, the input size and whether NMS is inside; the decoder's family gives
the pre-processing (YOLO: letterbox with 114 padding, RGB, 1/255) and the score threshold
(Ultralytics' 0.25). A file without metadata is decoded by the layout its output shapes show.
Anything given explicitly wins, and :attr:`ModelSettings.note` says in one line what was
inferred and from where.
"""

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Dict, List, Optional, Tuple

from hobot_npu_infer.core.backends.tensors import TensorSpec
from hobot_npu_infer.core.decoders.base import DECODERS
from hobot_npu_infer.core.decoders.layout_guess import (
    contradiction,
    guess_decoder,
    TASK_DECODERS,
)
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.models.builtin_models import ModelProfile
from hobot_npu_infer.core.models.labels import resolve_class_names
from hobot_npu_infer.core.models.model_file import ExportMetadata, ModelFile
from hobot_npu_infer.core.pipeline.pipeline_config import PipelineConfig
from hobot_npu_infer.core.pipeline.preprocess import PreprocessConfig
import numpy as np

ULTRALYTICS_NMS_THRESHOLD = 0.7  # Ultralytics' predict() default iou
ULTRALYTICS_MAX_DETECTIONS = 300


@dataclass(frozen=True)
class ModelSettings:
    decoder: str
    decoder_options: Dict[str, object]
    class_names: List[str]
    preprocess: PreprocessConfig
    score_threshold: float
    note: str  # one line: what was inferred, from where, and what was given


def describe_preprocess(config: PreprocessConfig) -> str:
    parts = [f'{config.input_size[0]}x{config.input_size[1]}' if config.input_size
             else "the model's size (dynamic: the image's)", config.resize]
    if config.resize == 'letterbox':
        parts.append(f'pad {config.pad_value}')
    parts.append(config.channel_order)
    if config.scale != 1:
        scale = Fraction(config.scale).limit_denominator(1000)
        parts.append(f'scale {scale}' if abs(float(scale) - config.scale) < 1e-9
                     else f'scale {config.scale:g}')
    if any(config.mean) or any(s != 1 for s in config.std):
        parts.append(f'mean {list(config.mean)} std {list(config.std)}')
    return ' '.join(parts)


def preprocess_settings(request: PipelineConfig, profile: Optional[ModelProfile], decoder: str,
                        meta: Optional[ExportMetadata] = None) -> PreprocessConfig:
    """
    Return the pre-processing: the decoder family's, the built-in model's, the export's size.

    What the configuration gives wins over all three.
    """
    preprocess = dict(DECODERS.lookup(decoder).preprocess) if decoder else {}
    preprocess.update(profile.preprocess if profile else {})
    if meta is not None and meta.imgsz:
        preprocess['input_size'] = meta.imgsz
    if meta is not None and meta.stride > 1:  # a size given for a dynamic export is rounded up
        preprocess['size_multiple'] = meta.stride
    preprocess.update(request.preprocess)
    if request.input_size is not None:
        preprocess['input_size'] = tuple(request.input_size)
    try:
        config = PreprocessConfig(**preprocess)
    except TypeError as exc:
        raise ConfigError(f'bad pre-processing option: {exc}') from None
    config.validate()
    return config


def _from_metadata(model: ModelFile) -> Tuple[str, Dict[str, object], str]:
    """Return the decoder, its options and the source phrase from an export's metadata."""
    meta = model.metadata
    name = TASK_DECODERS[meta.task][1 if meta.nms_inside else 0]
    options: Dict[str, object] = {}
    if meta.names:
        options['num_classes'] = len(meta.names)
    if meta.task == 'pose' and meta.kpt_shape:
        options['kpt_shape'] = list(meta.kpt_shape)
    if meta.task in ('detect', 'segment', 'pose', 'obb'):
        options['max_detections'] = ULTRALYTICS_MAX_DETECTIONS
        if not meta.nms_inside:
            options['nms_threshold'] = ULTRALYTICS_NMS_THRESHOLD
    if model.outputs is not None:
        problem = contradiction(meta.task, meta.nms_inside, len(meta.names), meta.kpt_shape,
                                model.outputs)
        if problem:
            raise ConfigError(
                f'{model.path}: its metadata contradicts its outputs ({model.describe_outputs()}'
                f'): {problem}; name the decoder and its options to say which is right')
    inside = ', NMS inside' if meta.nms_inside else ''
    return name, options, f"Ultralytics {meta.task} export{inside}, from the file's metadata"


def choose_settings(request: PipelineConfig, profile: Optional[ModelProfile],
                    model: ModelFile) -> Optional[ModelSettings]:
    """
    Return the settings, or None when they depend on outputs not read yet (load, then retry).

    Raises ConfigError when no decoder fits, or the file contradicts itself.
    """
    given: List[str] = []
    options: Dict[str, object] = {}
    meta = model.metadata
    if request.decoder:
        name, source = request.decoder, ''
        given.append('decoder')
    elif profile is not None:
        name, source = profile.decoder, f'built-in model {profile.name}'
    elif meta is not None and meta.task:
        name, options, source = _from_metadata(model)
    elif model.outputs is not None:
        name, options, reason = guess_decoder(model.outputs)
        source = f'no metadata: guessed from the output shapes ({reason})'
    else:
        return None
    decoder = DECODERS.lookup(name)
    if request.decoder_options:
        given.append('decoder options')
    options.update(request.decoder_options)
    if meta is not None and meta.problems:
        source += f' (unreadable metadata ignored: {", ".join(meta.problems)})'

    defaults = (profile.class_names if profile else ()) or (meta.names if meta else ())
    class_names = resolve_class_names(request.labels_file, request.class_names, defaults)
    if request.labels_file or request.class_names:
        given.append('class names')

    config = preprocess_settings(request, profile, name, meta)
    given += [f'preprocess {key}' for key in request.preprocess]
    if request.input_size is not None:
        given.append('input size')

    if request.score_threshold is not None:
        threshold = request.score_threshold
        given.append('score threshold')
    else:
        threshold = profile.score_threshold if profile else decoder.default_score_threshold
    shown = ', '.join(class_names[:6]) + (', ...' if len(class_names) > 6 else '')
    option_text = ', '.join(f'{k}={v}' for k, v in options.items())
    note = (f'{model.path}: decoder {name}{f" ({option_text})" if option_text else ""}'
            f'{f" [{source}]" if source else ""}, {len(class_names)} class(es)'
            f'{f" ({shown})" if shown else ""}, input {describe_preprocess(config)}, score '
            f'threshold {threshold:g}{"; given: " + ", ".join(given) if given else ""}')
    return ModelSettings(name, options, class_names, config, threshold, note)


def host_preprocess(config: PreprocessConfig, spec: TensorSpec) -> Tuple[PreprocessConfig, str]:
    """
    Return the pre-processing this process runs for model input ``spec``, and a note.

    A model taking integer pixels (NPU builds, NV12 camera models) normalises inside itself:
    the rknn backend builds it in from the same settings, a BPU model was compiled with its own.
    """
    normalises = config.scale != 1 or any(config.mean) or any(s != 1 for s in config.std)
    if not normalises or config.dtype is not None or np.dtype(spec.dtype).kind == 'f':
        return config, ''
    return (replace(config, scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
            f'; the model takes {np.dtype(spec.dtype).name} pixels: it normalises them itself')
