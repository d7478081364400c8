"""What a pipeline is built from: the model, its backend and everything configured about it."""

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

from hobot_npu_infer.core.pipeline.crop_stage import CropConfig


@dataclass
class PipelineConfig:
    """Everything needed to build a :class:`DetectionPipeline`; defaults run CenterFace on CPU."""

    model: str = 'centerface'
    model_name: str = ''  # one model of a multi-model file; empty: the file's only model
    backend: str = 'onnxruntime'
    backend_options: Dict[str, object] = field(default_factory=dict)
    decoder: str = ''  # empty: the built-in model's, else the file's metadata, else its shapes
    decoder_options: Dict[str, object] = field(default_factory=dict)
    input_size: Optional[Tuple[int, int]] = None  # (W, H); None: model's fixed size or image's
    score_threshold: Optional[float] = None  # None: the model's own, else the decoder's
    class_names: Sequence[str] = ()
    labels_file: str = ''
    preprocess: Dict[str, object] = field(default_factory=dict)  # PreprocessConfig fields given
    cache_dir: Optional[str] = None
    num_runtimes: int = 1  # engine instances run concurrently; 0: the backend's (NPU cores)
    max_batch: int = 1  # images the caller batches per run; > 1 makes a batch-1 ONNX batchable
    crop: Optional[CropConfig] = None  # a second model on the detections' crops
