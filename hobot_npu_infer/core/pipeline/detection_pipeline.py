"""
Image in, detections out: pre-processing, the backend and a decoder, timed stage by stage.

The stages are separate methods so callers (nodes, batchers) can run them on different threads
and overlap pre-processing of one frame with inference of another.
"""

from dataclasses import dataclass
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from hobot_npu_infer.core.backends import Backend, Model, select_model
from hobot_npu_infer.core.backends.selection import (
    open_backend,
    with_input_size,
    with_normalisation,
)
from hobot_npu_infer.core.decoders import create_decoder, Decoder
from hobot_npu_infer.core.detection import Detection, to_detections
from hobot_npu_infer.core.errors import ConfigError, OutputLayoutError
from hobot_npu_infer.core.imaging.source_mapping import to_source
from hobot_npu_infer.core.models.batchable_onnx import batchable_model
from hobot_npu_infer.core.models.builtin_models import (
    default_cache_dir,
    resolve_model,
    ResolvedModel,
)
from hobot_npu_infer.core.models.model_file import read_model_file
from hobot_npu_infer.core.pipeline.contract import (
    BatchOutcome,
    EVERYTHING,
    FramePlan,
    run_blank_frame,
    SourceImage,
)
from hobot_npu_infer.core.pipeline.crop_stage import CropStage
from hobot_npu_infer.core.pipeline.model_settings import choose_settings, host_preprocess
from hobot_npu_infer.core.pipeline.pipeline_config import PipelineConfig
from hobot_npu_infer.core.pipeline.preprocess import PreparedBatch, Preprocessor
import numpy as np


@dataclass
class ImageResult:
    detections: List[Detection]
    width: int
    height: int


class DetectionPipeline:
    """
    One model on every frame: pre-processing, the backend, a decoder, an optional crop model.

    Keeps the :class:`~hobot_npu_infer.core.pipeline.contract.Pipeline` contract.
    """

    def __init__(self, model: Model, preprocessor: Preprocessor, decoder: Decoder,
                 class_names: Sequence[str], score_threshold: float,
                 runtimes: Optional[List[Model]] = None, crop_stage: Optional[CropStage] = None):
        if not 0.0 <= score_threshold <= 1.0:
            raise ConfigError(f'score_threshold must be within [0, 1], got {score_threshold}')
        self.model = model
        self.runtimes = runtimes or [model]  # runtimes[0] is model
        self.crop_stage = crop_stage
        self.preprocessor = preprocessor
        self.decoder = decoder
        self.class_names = list(class_names)
        self.score_threshold = score_threshold
        self.loader: Optional[Callable[[], List[Model]]] = None  # loads the runtimes afresh
        self.model_path = ''
        self.backend: Optional[Backend] = None
        self.backend_note = ''  # which backend runs, and why when ``auto`` chose it
        self.model_note = ''  # what the model runs with, and what of it was inferred

    @classmethod
    def from_config(cls, config: PipelineConfig) -> 'DetectionPipeline':
        """
        Build the pipeline; what the configuration leaves out comes from the model itself.

        ``pipeline.model_note`` says in one line what was inferred and from where.
        """
        resolved: ResolvedModel = resolve_model(config.model, config.cache_dir)
        if not 0 <= config.num_runtimes <= 64:
            raise ConfigError(f"num_runtimes must be within 0..64 (0: the backend's choice), "
                              f'got {config.num_runtimes}')
        model_file = read_model_file(resolved.path)
        settings = choose_settings(config, resolved.profile, model_file)  # None: after loading
        options = with_input_size(config.backend_options, config.input_size or (
            settings.preprocess.input_size if settings else None))
        backend, backend_note = open_backend(
            config.backend, with_normalisation(options, settings.preprocess) if settings
            else options)
        num_runtimes = config.num_runtimes or backend.default_runtimes
        # a batch-1 ONNX export, rewritten to a dynamic batch where verified; compiled NPU
        # models keep the batch their compiler fixed
        loaded = batchable_model(resolved.path, config.cache_dir or default_cache_dir(),
                                 config.max_batch if backend.name == 'onnxruntime' else 1)

        def load_runtimes() -> List[Model]:
            return [select_model(backend.load(loaded.path, runtime), config.model_name,
                                 resolved.path) for runtime in range(num_runtimes)]
        runtimes = load_runtimes()
        model = runtimes[0]
        settings = settings or choose_settings(config, resolved.profile, model_file.with_outputs(
            [(spec.name, spec.shape) for spec in model.outputs]))
        preprocess, normalisation_note = host_preprocess(settings.preprocess, model.inputs[0])
        pipeline = cls(model, Preprocessor(preprocess, model.inputs[0]),
                       create_decoder(settings.decoder, **settings.decoder_options),
                       settings.class_names, settings.score_threshold, runtimes,
                       CropStage.load(backend, config.crop, num_runtimes)
                       if config.crop and config.crop.model else None)
        pipeline.loader, pipeline.model_path = load_runtimes, resolved.path
        pipeline.backend, pipeline.backend_note = backend, backend_note
        pipeline.model_note = settings.note + normalisation_note + (
            f'; {loaded.note}' if loaded.note else '')
        return pipeline

    def reload(self) -> None:
        """Load the runtimes afresh from the model file (after repeated backend failures)."""
        if self.loader is None:
            raise ConfigError('this pipeline was not built from a model file; nothing to reload')
        runtimes = self.loader()
        self.model, self.runtimes = runtimes[0], runtimes

    def prepare(self, images: Sequence[np.ndarray],
                channel_orders: Union[str, Sequence[str]] = 'bgr') -> PreparedBatch:
        """Pre-process up to one run's worth of images, padded to a fixed compiled batch."""
        return self.preprocessor.prepare(images, channel_orders, self.model.batch.fixed_size)

    def infer(self, batch: PreparedBatch, runtime: int = 0) -> List[np.ndarray]:
        return self.runtimes[runtime].run([batch.tensor])

    def plan(self, source: str, received: float) -> FramePlan:
        """Every frame is run, whole."""
        return EVERYTHING

    def warm_up(self) -> None:
        """One run of every runtime on a blank frame."""
        run_blank_frame(self, EVERYTHING)

    def run_batch(self, plans: Sequence[FramePlan], images: Sequence[SourceImage],
                  batch: PreparedBatch, runtime: int = 0) -> BatchOutcome:
        """Backend, decoder and second stage on one prepared batch."""
        start, cpu = time.perf_counter(), time.thread_time()
        outputs = self.infer(batch, runtime)
        inference_ms = (time.perf_counter() - start) * 1e3
        decoding = time.thread_time()
        detections = self.second_stage(images, self.decode(outputs, batch), runtime)
        return BatchOutcome(detections, inference_ms, cpu_ms={
            'inference': (decoding - cpu) * 1e3, 'decode': (time.thread_time() - decoding) * 1e3})

    def second_stage(self, images: Sequence[SourceImage],
                     detections: List[List[Detection]], runtime: int = 0
                     ) -> List[List[Detection]]:
        """Attach the crop model's output to each detection, when one is configured."""
        if self.crop_stage is None:
            return detections
        return self.crop_stage.attach(images, detections, runtime)

    def decode(self, outputs: List[np.ndarray], batch: PreparedBatch) -> List[List[Detection]]:
        """
        Decode detections per real image of the batch, in original pixels.

        Padding slots are skipped.
        """
        if not outputs or outputs[0].shape[0] < len(batch.transforms):
            raise OutputLayoutError(f'model {self.model.name} returned outputs for fewer images '
                                    f'than the batch of {len(batch.transforms)}')
        raws = self.decoder.decode(outputs, batch.input_size, self.score_threshold,
                                   len(batch.transforms))
        return [to_detections(to_source(raw, transform, batch.input_size, self.decoder.task),
                              self.class_names)
                for raw, transform in zip(raws, batch.transforms)]

    @property
    def task(self) -> str:
        """Return what the model does (detection.TASKS): which results and outputs it has."""
        return self.decoder.task

    @property
    def max_batch(self) -> int:
        return self.model.batch.fixed_size or 0

    def detect(self, images: Sequence[np.ndarray],
               channel_orders: Union[str, Sequence[str]] = 'bgr'
               ) -> Tuple[List[ImageResult], Dict[str, float]]:
        """Return detections per image and the time of each stage in ms, summed over the runs."""
        orders = [channel_orders] * len(images) if isinstance(channel_orders, str) \
            else list(channel_orders)
        step = self.max_batch or len(images)
        timing = {'preprocess': 0.0, 'inference': 0.0, 'postprocess': 0.0}
        results: List[ImageResult] = []
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            t0 = time.perf_counter()
            batch = self.prepare(chunk, orders[start:start + step])
            t1 = time.perf_counter()
            outputs = self.infer(batch)
            t2 = time.perf_counter()
            detections = self.second_stage(list(zip(chunk, orders[start:start + step])),
                                           self.decode(outputs, batch))
            t3 = time.perf_counter()
            timing['preprocess'] += (t1 - t0) * 1e3
            timing['inference'] += (t2 - t1) * 1e3
            timing['postprocess'] += (t3 - t2) * 1e3
            results += [ImageResult(d, t.source_size[0], t.source_size[1])
                        for d, t in zip(detections, batch.transforms)]
        return results, timing
