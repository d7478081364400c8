"""
Each head at its own rate over a shared trunk.

On every frame the due heads are found (one schedule per camera, on the frames' arrival times),
the trunk runs only if one is due, and the due heads run on that same frame's features. Frames
no head needs are not even pre-processed.
"""

from dataclasses import dataclass
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Union

from hobot_npu_infer.core.backends.selection import open_backend, with_input_size
from hobot_npu_infer.core.decoders import create_decoder, Decoder
from hobot_npu_infer.core.decoders.base import DECODERS
from hobot_npu_infer.core.detection import Detection, to_detections
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.imaging.source_mapping import to_source
from hobot_npu_infer.core.models.builtin_models import resolve_model
from hobot_npu_infer.core.multi_head.graph_split import HeadSpec
from hobot_npu_infer.core.multi_head.head_scheduler import HeadRate, HeadScheduler
from hobot_npu_infer.core.multi_head.packed_model import (
    HeadFile,
    load_pack,
    load_split,
    PackedModel,
)
from hobot_npu_infer.core.pipeline.contract import (
    BatchOutcome,
    FramePlan,
    run_blank_frame,
    SourceImage,
)
from hobot_npu_infer.core.pipeline.model_settings import host_preprocess, preprocess_settings
from hobot_npu_infer.core.pipeline.pipeline_config import PipelineConfig
from hobot_npu_infer.core.pipeline.preprocess import PreparedBatch, Preprocessor
import numpy as np


@dataclass
class HeadOutput:
    """
    One head's result on one frame: detections when it has a decoder, else raw tensors.

    On a frame the head did not run on, shadow tracking gives it the tracker's predicted
    detections, and ``measured_meta`` (the meta of the frame they were last measured on).
    """

    head: str
    detections: Optional[List[Detection]]
    tensors: List[np.ndarray]  # this frame's slice of each output, batch dimension kept
    inference_ms: float
    postprocess_ms: float
    measured_meta: Optional[object] = None


@dataclass
class HeadConfig:
    """
    One head of a packed model: where it comes from, its decoder and its rate.

    It is its outputs in a split file, or its own file, or a model of a packed file
    (``model_name``; the file defaults to the pipeline's model); its decoder may be none (raw
    tensors).
    """

    name: str
    outputs: Sequence[str] = ()
    file: str = ''
    model_name: str = ''
    decoder: str = ''
    class_names: Sequence[str] = ()
    rate: Optional[HeadRate] = None

    def __post_init__(self):
        if self.rate is None:
            self.rate = HeadRate(self.name)


@dataclass
class HeadDecoding:
    decoder: Decoder
    class_names: Sequence[str] = ()
    score_threshold: float = 0.5


class MultiHeadPipeline:
    """
    A packed model's heads, each at its own rate, over one trunk run per frame.

    Keeps the :class:`~hobot_npu_infer.core.pipeline.contract.Pipeline` contract: a frame's
    plan is the set of heads due on it, and a frame no head is due on is skipped.
    """

    def __init__(self, packed: PackedModel, preprocessor: Preprocessor, heads: List[HeadRate],
                 decoding: Dict[str, HeadDecoding]):
        HeadScheduler(heads)  # validates the rates now rather than on the first frame
        self.packed = packed
        self.preprocessor = preprocessor
        self.head_rates = {h.name: h for h in heads}
        self.decoding = decoding
        self.schedulers: Dict[str, HeadScheduler] = {}
        self._lock = threading.Lock()
        self.model = packed.trunk or next(iter(packed.heads.values())).model
        self.runtimes = [self.model]  # one engine instance: heads run one after another
        self.class_names = next((list(d.class_names) for d in decoding.values()), [])
        self.loader: Optional[Callable[[], PackedModel]] = None  # loads the packed model afresh
        self.backend = None
        self.backend_note = ''  # which backend runs, and why when ``auto`` chose it
        self.model_path = ''  # the model file the heads were split from ('' for a pack)
        self.model_note = ', '.join(f'head {name}: decoder {d.decoder.name}, '
                                    f'{len(d.class_names)} class(es)'
                                    for name, d in decoding.items())

    @property
    def score_threshold(self) -> float:
        return next((d.score_threshold for d in self.decoding.values()), 0.0)

    @score_threshold.setter
    def score_threshold(self, value: float) -> None:
        for decoding in self.decoding.values():
            decoding.score_threshold = value

    @classmethod
    def from_config(cls, config: PipelineConfig, heads: List[HeadConfig],
                    cut_tensors: Optional[List[str]] = None,
                    trunk_file: str = '') -> 'MultiHeadPipeline':
        """
        Build the pipeline from ``config`` and its ``heads``.

        Heads split out of ``config.model`` (each names its outputs), or a pack of files (each
        names its file or a model of a packed file, after an optional trunk file).
        """
        if not heads:
            raise ConfigError('a packed model needs at least one head')
        backend, backend_note = open_backend(
            config.backend, with_input_size(config.backend_options, config.input_size))
        if all(h.outputs and not h.file for h in heads):
            resolved = resolve_model(config.model, config.cache_dir)
            profile = resolved.profile

            def load() -> PackedModel:
                return load_split(backend, resolved.path,
                                  [HeadSpec(h.name, list(h.outputs)) for h in heads],
                                  cut_tensors or None, config.cache_dir)
        elif all((h.file or h.model_name) and not h.outputs for h in heads):
            profile = None
            packed_file = '' if all(h.file for h in heads) else \
                resolve_model(config.model, config.cache_dir).path

            def load() -> PackedModel:
                return load_pack(backend, [HeadFile(h.name, h.file or packed_file, h.model_name)
                                           for h in heads],
                                 HeadFile('trunk', trunk_file) if trunk_file else None)
        else:
            raise ConfigError('give every head either its outputs (a split of the model file) '
                              'or its own file or model_name (a pack), not a mix')
        packed = load()

        def threshold(decoder: str) -> float:
            if config.score_threshold is not None:
                return config.score_threshold
            return profile.score_threshold if profile else \
                DECODERS.lookup(decoder).default_score_threshold
        decoding = {h.name: HeadDecoding(create_decoder(h.decoder), list(h.class_names) or
                                         (list(profile.class_names) if profile else []),
                                         threshold(h.decoder))
                    for h in heads if h.decoder}
        # The trunk's input is prepared as the first decoded head's family expects.
        first_decoder = next((h.decoder for h in heads if h.decoder), '')
        preprocess, _ = host_preprocess(preprocess_settings(config, profile, first_decoder),
                                        packed.input)
        pipeline = cls(packed, Preprocessor(preprocess, packed.input), [h.rate for h in heads],
                       decoding)
        pipeline.loader = load
        if all(h.outputs for h in heads):
            pipeline.model_path = resolved.path
        pipeline.backend, pipeline.backend_note = backend, backend_note
        return pipeline

    def reload(self) -> None:
        """Load the packed model afresh (after repeated backend failures)."""
        if self.loader is None:
            raise ConfigError('this pipeline was not built from model files; nothing to reload')
        self.packed = self.loader()
        self.model = self.packed.trunk or next(iter(self.packed.heads.values())).model
        self.runtimes = [self.model]

    def scheduler(self, source: str) -> HeadScheduler:
        with self._lock:
            if source not in self.schedulers:
                self.schedulers[source] = HeadScheduler(
                    [HeadRate(**vars(h)) for h in self.head_rates.values()])
            return self.schedulers[source]

    def set_rate(self, name: str, rate_hz: Optional[float] = None,
                 every_n_frames: Optional[int] = None) -> None:
        """Set a new rate for ``name`` on every camera, from the next frame on."""
        with self._lock:
            schedulers = list(self.schedulers.values())
        for scheduler in schedulers or [HeadScheduler(list(self.head_rates.values()))]:
            scheduler.set_rate(name, rate_hz, every_n_frames)
        head = self.head_rates[name]
        head.rate_hz, head.every_n_frames = rate_hz or 0.0, every_n_frames or 0

    def set_enabled(self, name: str, enabled: bool) -> None:
        with self._lock:
            schedulers = list(self.schedulers.values())
        for scheduler in schedulers or [HeadScheduler(list(self.head_rates.values()))]:
            scheduler.set_enabled(name, enabled)
        self.head_rates[name].enabled = enabled

    def plan(self, source: str, received: float) -> Optional[FramePlan]:
        """Return the heads due on this frame of ``source``; None when no head is."""
        due = self.scheduler(source).due(received)
        return frozenset(due) if due else None

    def warm_up(self) -> None:
        """One run of the trunk and every head on a blank frame."""
        run_blank_frame(self, frozenset(self.head_rates))

    def prepare(self, images: Sequence[np.ndarray],
                channel_orders: Union[str, Sequence[str]] = 'bgr') -> PreparedBatch:
        return self.preprocessor.prepare(images, channel_orders, self.packed.input_batch_size())

    def run_batch(self, plans: Sequence[FramePlan], images: Sequence[SourceImage],
                  batch: PreparedBatch, runtime: int = 0) -> BatchOutcome:
        """Run the trunk once, then every head some frame of the batch is due for."""
        start, cpu = time.perf_counter(), time.thread_time()
        features = self.packed.features(batch.tensor)
        inference_ms = (time.perf_counter() - start) * 1e3
        cpu_ms = {'inference': (time.thread_time() - cpu) * 1e3, 'decode': 0.0}
        needed = [h for h in self.head_rates if any(h in plan for plan in plans)]
        per_head = {}
        for name in needed:
            start, cpu = time.perf_counter(), time.thread_time()
            tensors = self.packed.run_head(name, features)
            ran, ran_cpu = time.perf_counter(), time.thread_time()
            cpu_ms['inference'] += (ran_cpu - cpu) * 1e3
            found = None
            decoding = self.decoding.get(name)
            if decoding is not None:
                raws = decoding.decoder.decode(tensors, batch.input_size,
                                               decoding.score_threshold, len(batch.transforms))
                found = [to_detections(to_source(raw, transform, batch.input_size,
                                                 decoding.decoder.task), decoding.class_names)
                         for raw, transform in zip(raws, batch.transforms)]
            per_head[name] = (tensors, found, (ran - start) * 1e3,
                              (time.perf_counter() - ran) * 1e3)
            cpu_ms['decode'] += (time.thread_time() - ran_cpu) * 1e3
            inference_ms += (ran - start) * 1e3
        heads, detections = [], []
        for i, plan in enumerate(plans):
            outputs = [HeadOutput(name, None if found is None else found[i],
                                  [t[i:i + 1] for t in tensors], infer_ms, post_ms)
                       for name, (tensors, found, infer_ms, post_ms) in per_head.items()
                       if name in plan]
            heads.append(outputs)
            detections.append([d for o in outputs for d in o.detections or ()])
        return BatchOutcome(detections, inference_ms, heads, cpu_ms)

    def process(self, images: Sequence[np.ndarray], frame_time: float,
                channel_orders: str = 'bgr', source: str = '') -> List[HeadOutput]:
        """Run the heads due at ``frame_time`` on one frame (all ``images`` belong to it)."""
        plan = self.plan(source, frame_time)
        if plan is None:
            return []
        batch = self.prepare(images, channel_orders)
        outcome = self.run_batch([plan] * len(images),
                                 [(image, channel_orders) for image in images], batch)
        return outcome.heads[0]
