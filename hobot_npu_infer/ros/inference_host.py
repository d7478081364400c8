"""
What both infer nodes own and drive: a model serving camera topics, in four steps.

- ``load``: validate the parameters, load and warm up the model, create the publishers;
- ``start``: start the stream runner, subscribe to the inputs, run the diagnostics timer;
- ``stop``: unsubscribe, stop the runner threads and the timer; the model stays loaded;
- ``release``: stop, destroy the publishers and drop the model.

infer_node loads and starts in its constructor and releases when destroyed; infer_lifecycle_node
calls the steps from its transitions. Subscription callbacks only store the newest message of
each input; conversion, inference and publishing run on the stream runner's threads, so
receiving never waits for the model.
"""

import dataclasses
from dataclasses import dataclass
import functools
import os
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from diagnostic_msgs.msg import DiagnosticArray
from hobot_npu_infer.core.backends.selection import AUTO, parse_options
from hobot_npu_infer.core.backends.tensors import NV12
from hobot_npu_infer.core.errors import BackendError, InferError, one_line
from hobot_npu_infer.core.imaging.geometry import parse_size
from hobot_npu_infer.core.models.model_file_watch import (
    ChangeReloads,
    file_report,
    FileSignature,
    ModelFileWatch,
    UNCHANGED,
    WatchStatus,
)
from hobot_npu_infer.core.multi_head.multi_head_pipeline import (
    HeadConfig,
    HeadOutput,
    MultiHeadPipeline,
)
from hobot_npu_infer.core.pipeline.contract import Pipeline
from hobot_npu_infer.core.pipeline.crop_stage import CropConfig
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, PipelineConfig
from hobot_npu_infer.core.streaming.batcher import Frame, FrameBatcher
from hobot_npu_infer.core.streaming.reload_backoff import ReloadBackoff
from hobot_npu_infer.core.streaming.stream_runner import FrameResult, StreamRunner
from hobot_npu_infer.core.telemetry.health_reports import (
    CLOCK_SKEW,
    HealthThresholds,
    Level,
    ModelStats,
    SourceStats,
)
from hobot_npu_infer.core.telemetry.log_throttle import LogThrottle
from hobot_npu_infer.core.telemetry.status_names import input_status, model_status
from hobot_npu_infer.core.tracking.tracked_streams import TrackedStreams
from hobot_npu_infer.core.tracking.tracker_config import TrackerConfig
from hobot_npu_infer.ros import detection_msgs
from hobot_npu_infer.ros.diagnostics import to_array
from hobot_npu_infer.ros.image_conversion import (
    check_limits,
    compressed_to_array,
    image_to_array,
    ImageConversionError,
    InputLimits,
)
from hobot_npu_infer.ros.infer_parameters import head_field, InferParameters, RATE_FIELDS
from hobot_npu_infer.ros.input_reader import InputReader, TakenByReaders
from hobot_npu_infer.ros.param_specs import Changes, guard_changes, InvalidParameter
from hobot_npu_infer.ros.perception_targets import PerceptionTargetsOutput
from hobot_npu_infer.ros.qos import image_qos, per_input
from hobot_npu_infer.ros.result_publishers import ResultPublishers
from hobot_npu_infer.ros.serialized_images import (
    Buffer,
    CompressedImageView,
    hbm_message_type,
    read_compressed,
    read_hbm_image,
    read_image,
)
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_check_compatible, QoSCompatibility, QoSPolicyKind, QoSProfile
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

try:
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

THRESHOLD_PARAMETERS = ('expected_rate_hz', 'latency_budget_ms', 'stale_timeout_s')
RELOAD_JOIN_S = 60.0  # stop waits this long at most for a model loading on change
# An input sending frames over the limits is not listened to for a while: after this many in a
# row, for this long, doubling up to the most while it goes on.
PAUSE_AFTER_REFUSALS, PAUSE_FIRST_S, PAUSE_MAX_S = 1, 10.0, 60.0
LIMIT_PARAMETERS = {'max_input_pixels': 'max_pixels',
                    'max_compressed_bytes': 'max_compressed_bytes'}


@dataclass(frozen=True)
class InputTopic:
    """One input: its topic (resolved once loaded), message type, how its messages are read."""

    topic: str
    msg_type: type
    read: Callable[[Buffer], object]


@dataclass(frozen=True)
class LoadedSettings:
    """What ``load`` decided from the parameters, for ``start`` and the diagnostics."""

    thresholds: HealthThresholds
    topics: List[InputTopic]
    qos: List[QoSProfile]
    max_batch: int
    max_batch_delay_s: float
    diagnostics_period_s: float
    backend: str
    keep_nv12: bool  # a model that takes NV12 gets camera nv12 untouched (crops need BGR)
    summary: str  # the start-up line
    model_score_threshold: float  # the model's own, which score_threshold 0 stands for


class ModelFileWatching:
    """
    The model file under the running node: its watch, the reloads on change, how to rebuild.

    ``rebuild`` makes a pipeline as ``load`` made the running one (same configuration and
    heads), from the file as it is now (``input_size`` as set, for the log). ``cancel`` is set
    by ``stop``: a reload in progress is then dropped, never swapped in.
    """

    def __init__(self, watch: ModelFileWatch, reload_on_change: bool, period_s: float,
                 rebuild: Callable[[], Pipeline], input_size: str = ''):
        self.watch = watch
        self.reloads = ChangeReloads(reload_on_change)
        self.period_s = period_s
        self.rebuild = rebuild
        self.input_size = input_size
        self.cancel = threading.Event()
        self.thread: Optional[threading.Thread] = None  # the reload in progress
        self.logged: Tuple[str, str] = (UNCHANGED, '')  # the state and version last logged


class InferenceHost:
    """
    A model serving camera topics on behalf of ``node``.

    ``managed`` (the lifecycle node): outputs are lifecycle publishers, and the parameters
    that infer_node fixes at start-up can change while nothing is loaded, to be read at the
    next ``load``.
    """

    def __init__(self, node: Node, managed: bool = False):
        self.node = node
        self.managed = managed
        self._lock = threading.RLock()  # steps against the diagnostics timer
        self.log_throttle = LogThrottle()
        self.parameters = InferParameters(node, managed)
        self.pipeline: Optional[Pipeline] = None
        self.settings: Optional[LoadedSettings] = None
        self.heads: List[HeadConfig] = []
        self.sources: List[str] = []
        self.stats: Dict[str, SourceStats] = {}
        self.model_stats: Optional[ModelStats] = None
        self.results: Optional[ResultPublishers] = None
        self.tracking: Optional[TrackedStreams] = None
        self.model_file: Optional[ModelFileWatching] = None  # from load to release
        self._measured: Dict[Tuple[str, str], Header] = {}  # (input, head): last run's header
        self._sizes: Dict[str, Tuple[int, int]] = {}  # input -> its last frame's (w, h)
        self.diagnostics_pub = None
        self.batcher: Optional[FrameBatcher] = None
        self.runner: Optional[StreamRunner] = None
        self._readers: List[Optional[InputReader]] = []  # per input; None while paused
        self._readers_lock = threading.Lock()  # never held while a reader is joined
        self._receive_group = TakenByReaders()
        self._refusals: List[ReloadBackoff] = []  # per input: its frames refused in a row
        self._diagnostics_timer = None
        self.limits = InputLimits(0, 0)  # set from the parameters at load, and on change
        self._stamp_window_ns = (0, 0)  # a stamp off now by more (ahead, behind) is skewed
        guard_changes(node, lambda changes: self.parameters.check(changes, self.loaded),
                      self._apply)

    @property
    def loaded(self) -> bool:
        return self.pipeline is not None

    # -- parameters ----------------------------------------------------------------------

    def _apply(self, changes: Changes) -> None:
        """Apply checked changes to the running pipeline and thresholds (nothing loaded: none)."""
        with self._lock:
            pipeline, settings = self.pipeline, self.settings
            if pipeline is None:  # the values are read when the model is loaded
                return
            heads = {head.name for head in self.heads}
            rates = set()
            for name, value in changes.items():
                field = head_field(name)
                if name == 'score_threshold':
                    self._set_score_threshold(value or settings.model_score_threshold)
                elif name in LIMIT_PARAMETERS:
                    self.limits = dataclasses.replace(self.limits,
                                                      **{LIMIT_PARAMETERS[name]: value})
                elif name == 'stamp_tolerance_s':
                    self._stamp_window_ns = (int(value * 1e9), self._stamp_window_ns[1])
                elif name in THRESHOLD_PARAMETERS:
                    setattr(settings.thresholds, name, value)
                elif field is not None and field[0] in heads:
                    if field[1] in RATE_FIELDS:
                        rates.add(field[0])
                    elif field[1] == 'enabled':
                        pipeline.set_enabled(field[0], value)
            for head in rates:  # both fields at once, so the scheduler runs what they say
                pipeline.set_rate(head, *self.parameters.rate_after(changes, head))

    @property
    def score_threshold(self) -> float:
        """Return the least score published (a tracker may decode lower, for its own use)."""
        tracking = self.tracking
        return tracking.score_threshold if tracking is not None \
            else self.pipeline.score_threshold

    def _set_score_threshold(self, value: float) -> None:
        """Publish from ``value`` up; with a tracker, decode down to its low threshold."""
        tracking = self.tracking
        if tracking is None:
            self.pipeline.score_threshold = value
            return
        tracking.score_threshold = value
        self.pipeline.score_threshold = min(value, tracking.config.low_threshold)

    def _tracker_config(self, p: Dict) -> Optional[TrackerConfig]:
        """Return the tracker the parameters ask for; None for none, or when not installed."""
        config = TrackerConfig(p['tracker'], p['track_high_threshold'], p['track_low_threshold'],
                               p['track_new_threshold'], p['track_match_iou'],
                               p['track_buffer_s'], p['track_min_hits'], p['track_per_class'],
                               p['shadow_tracking'])
        try:
            config.validate()
        except InferError as exc:
            raise InvalidParameter(str(exc)) from None
        if not config.enabled:
            return None
        try:
            import trackers  # noqa: F401
        except ImportError as exc:
            self.node.get_logger().warning(
                f'tracker {config.tracker}: the trackers package is not installed ({exc}); '
                f'detections go out without track IDs (pip install --no-deps -r '
                f'requirements-tracking.txt, or set tracker to none)')
            return None
        return config

    def _resolve(self, topic: str, what: str) -> str:
        try:
            return self.node.resolve_topic_name(topic)  # namespace and remapping applied
        except Exception as exc:  # noqa: BLE001 (rclpy's RCLError names the broken rule)
            raise InvalidParameter(f'{what} {topic!r}: {str(exc).split(", at ")[0]}') from None

    def _hbmem_inputs(self, p: Dict) -> List[InputTopic]:
        """Return the TROS shared-memory inputs, their topics as given."""
        topics = p['hbmem_inputs']
        if not topics:
            return []
        try:
            msg_type = hbm_message_type(p['hbmem_message'])
            frame_ids = per_input(p['hbmem_frame_ids'], len(topics), 'hbmem_frame_ids')
        except ImportError as exc:
            raise InvalidParameter(
                f'hbmem_inputs need the hbm_img_msgs package, a TROS package ({one_line(exc)}): '
                f'source /opt/tros/<distro>/setup.bash, or republish the frames as '
                f'sensor_msgs/Image on inputs') from None
        except ValueError as exc:
            raise InvalidParameter(str(exc)) from None
        return [InputTopic(topic, msg_type, functools.partial(read_hbm_image, frame_id=frame))
                for topic, frame in zip(topics, frame_ids)]

    # -- the four steps ------------------------------------------------------------------

    def load(self) -> float:
        """
        Do everything up to receiving frames.

        Returns the seconds the model took to load and warm up. Raises InvalidParameter or
        InferError, having created no ROS entity.
        """
        p = self.parameters.values()
        topics = [InputTopic(t, Image, read_image) for t in p['inputs']] + \
            [InputTopic(t, CompressedImage, read_compressed) for t in p['compressed_inputs']] + \
            self._hbmem_inputs(p)
        if not topics:
            raise InvalidParameter('inputs, compressed_inputs and hbmem_inputs are all empty: '
                                   'give at least one image topic')
        try:
            reliability = per_input(p['qos_reliability'], len(topics), 'qos_reliability')
            depth = per_input(p['qos_depth'], len(topics), 'qos_depth')
        except ValueError as exc:
            raise InvalidParameter(str(exc)) from None
        hbmem = len(topics) - len(p['hbmem_inputs'])  # they come last
        for topic, kind in zip(topics[hbmem:], reliability[hbmem:]):
            if kind != 'best_effort':
                raise InvalidParameter(
                    f'qos_reliability of hbmem input {topic.topic} is {kind}: TROS publishes '
                    f'shared-memory frames best effort, a {kind} subscription would never match '
                    f'them')
        if p['output_topics'] and len(p['output_topics']) != len(topics):
            raise InvalidParameter(f'output_topics has {len(p["output_topics"])} names for '
                                   f'{len(topics)} inputs')
        sources: List[str] = []
        for topic in topics:
            source = self._resolve(topic.topic, 'input topic')
            if source in sources:
                raise InvalidParameter(f'input topic {source} is listed twice')
            sources.append(source)
        outputs = [self._resolve(t, 'output topic') for t in p['output_topics']] or \
            [f'{source}/detections' for source in sources]
        fmt = detection_msgs.resolve_format(p['detections_format'])
        perception_targets = detection_msgs.publishes_perception_targets(p['detections_format'])
        config = PipelineConfig(
            model=p['model'], model_name=p['model_name'], backend=p['backend'],
            backend_options={'onnxruntime.intra_op_threads': p['threads'],
                             **parse_options(p['backend_options'])},
            decoder=p['decoder'], decoder_options=parse_options(p['decoder_options']),
            labels_file=p['labels_file'], class_names=p['class_names'],
            input_size=parse_size(p['input_size']) if p['input_size'] else None,
            score_threshold=p['score_threshold'] or None, cache_dir=p['cache_dir'] or None,
            preprocess=self.parameters.preprocess(p),
            num_runtimes=p['num_runtimes'], max_batch=p['max_batch_size'] or len(sources),
            crop=CropConfig(
                model=p['crop_model'], output=p['crop_output'], margin=p['crop_margin'],
                class_names=p['crop_class_names'], max_batch=p['crop_max_batch'],
                preprocess={'resize': 'stretch', 'scale': p['crop_scale'],
                            'mean': tuple(p['crop_mean']), 'std': tuple(p['crop_std'])})
            if p['crop_model'] else None)
        heads = [self.parameters.head(name) for name in p['head_names']]
        tracker = self._tracker_config(p)
        started = time.monotonic()
        pipeline: Pipeline
        if heads:
            pipeline = MultiHeadPipeline.from_config(config, heads, p['cut_tensors'],
                                                     p['trunk_file'])
        else:
            pipeline = DetectionPipeline.from_config(config)
        try:
            pipeline.warm_up()
        except Exception as exc:  # noqa: BLE001 (the backend may raise anything)
            raise BackendError(f'warm-up run of {p["model"]} on a blank frame failed: '
                               f'{one_line(exc)}') from None
        load_s = time.monotonic() - started

        with self._lock:
            window = p['stats_window_s']
            max_batch = p['max_batch_size'] or len(sources)
            self.pipeline, self.heads = pipeline, heads
            self.settings = LoadedSettings(
                thresholds=HealthThresholds(p['expected_rate_hz'], p['latency_budget_ms'],
                                            p['stale_timeout_s']),
                topics=[dataclasses.replace(topic, topic=source)
                        for topic, source in zip(topics, sources)],
                qos=[image_qos(r, d) for r, d in zip(reliability, depth)],
                max_batch=max_batch,
                max_batch_delay_s=p['max_batch_delay_ms'] / 1e3,
                diagnostics_period_s=p['diagnostics_period_s'],
                backend=p['backend'],
                keep_nv12=pipeline.preprocessor.layout == NV12 and not p['crop_model'],
                summary=(f'{p["model"]} on {p["backend"]} ({pipeline.model.batch.describe()} '
                         f'batch, input {input_description(p["input_size"], pipeline)}, '
                         f'batches of up to {pipeline.model.batch.fixed_size or max_batch} '
                         f'within {p["max_batch_delay_ms"]:g} ms, {len(pipeline.runtimes)} '
                         f'runtime(s)), inputs {", ".join(sources)}, detections as {fmt}'
                         + (' and ai_msgs/PerceptionTargets' if perception_targets else '')
                         + (f'; {pipeline.backend_note}' if p['backend'] == AUTO else '')
                         + f'; model: {pipeline.model_note}'),
                model_score_threshold=pipeline.score_threshold)
            tasks = {name: d.decoder.task for name, d in pipeline.decoding.items()} if heads \
                else {'': pipeline.task}
            self.tracking = TrackedStreams(tracker, pipeline.score_threshold, tasks) \
                if tracker is not None else None
            self._set_score_threshold(pipeline.score_threshold)
            self._measured, self._sizes = {}, {}
            self.limits = InputLimits(p['max_input_pixels'], p['max_compressed_bytes'])
            self._stamp_window_ns = (int(p['stamp_tolerance_s'] * 1e9), int(window * 1e9))
            self.sources = sources
            self.stats = {source: SourceStats(source, window) for source in sources}
            self.model_stats = ModelStats(p['model'], window, runtimes=len(pipeline.runtimes))
            if pipeline.backend is not None:
                self.model_stats.npu_load = pipeline.backend.npu_load
            self.results = ResultPublishers(
                self.node, self.managed, fmt, sources, outputs, p['publish_debug_image'],
                None if heads else pipeline.task, heads,
                {name: len(head.model.outputs) for name, head in pipeline.packed.heads.items()}
                if heads else {},
                {name: d.decoder.task for name, d in pipeline.decoding.items()}
                if heads else {}, window,
                num_keypoints=0 if heads else pipeline.decoder.num_keypoints,
                head_keypoints={name: d.decoder.num_keypoints
                                for name, d in pipeline.decoding.items()} if heads else None,
                markers=p['publish_markers'], markers_pixel_size=p['markers_pixel_size'],
                perception_targets=PerceptionTargetsOutput(
                    p['model_name'] or os.path.splitext(os.path.basename(p['model']))[0],
                    lambda: self.node.get_clock().now().nanoseconds)
                if perception_targets else None)
            # not a lifecycle publisher: the timer that uses it runs only while started
            self.diagnostics_pub = self.node.create_publisher(DiagnosticArray, '/diagnostics', 10)
            self.model_file = self._watch_model_file(pipeline, p, config, heads)
        return load_s

    def start(self) -> None:
        """Frames in: the runner threads, then the subscriptions; and the diagnostics."""
        with self._lock:
            s = self.settings
            self.batcher = FrameBatcher(self.sources)
            self.runner = StreamRunner(self.pipeline, self.batcher, self._convert, self._deliver,
                                       self._on_bad_frame, self._on_internal_error, self.stats,
                                       self.model_stats, s.max_batch, s.max_batch_delay_s,
                                       on_skipped=self._on_skipped if self.heads and
                                       self.tracking is not None else None)
            self.runner.start()
            self._refusals = [ReloadBackoff(PAUSE_AFTER_REFUSALS, PAUSE_FIRST_S, PAUSE_MAX_S)
                              for _ in s.topics]
            self._readers = [self._subscribe(i) for i in range(len(s.topics))]
            self.results.publish_class_names(self._header(), self.pipeline.class_names)
            self._diagnostics_timer = self.node.create_timer(
                s.diagnostics_period_s, self._publish_diagnostics,
                callback_group=MutuallyExclusiveCallbackGroup())
            self._start_model_watch()

    def stop(self) -> None:
        """No more frames in: subscriptions, timer and runner threads end; the model stays."""
        with self._lock:
            self._stop_model_watch()
            with self._readers_lock:
                readers, self._readers = self._readers, []
            for reader in readers:
                if reader is not None:  # None: paused
                    reader.close()
            if self._diagnostics_timer is not None:
                self.node.destroy_timer(self._diagnostics_timer)
                self._diagnostics_timer = None
            if self.runner is not None:
                self.runner.stop()
            self.runner = self.batcher = None

    def release(self) -> None:
        """Back to nothing loaded: stopped, publishers destroyed, the model dropped."""
        with self._lock:
            self.stop()
            if self.results is not None:
                self.results.destroy()
            if self.diagnostics_pub is not None:
                self.node.destroy_publisher(self.diagnostics_pub)
            self.diagnostics_pub = self.results = None
            # new containers, so a receive callback still running keeps consistent old ones
            self.sources, self.stats = [], {}
            self.pipeline, self.heads, self.settings, self.model_stats = None, [], None, None
            self.tracking = self.model_file = None

    # -- frames in, results out ----------------------------------------------------------

    def _header(self) -> Header:
        return Header(stamp=self.node.get_clock().now().to_msg(), frame_id='')

    def _subscribe(self, index: int) -> InputReader:
        """Subscribe to input ``index``, its messages taken serialized on a thread of its own."""
        topic = self.settings.topics[index]  # serialized bytes in: no deserialisation copy
        return InputReader(
            self.node, topic.msg_type, topic.topic, self.settings.qos[index],
            self._receive_group, lambda raw: self._on_image(raw, index, topic.read),
            event_callbacks=SubscriptionEventCallbacks(
                incompatible_qos=lambda info: self._on_incompatible_qos(info, index)))

    def _refused(self, index: int, error: ImageConversionError) -> None:
        """
        Count a frame over the limits; pause an input that sends nothing else.

        Even refused, a message costs its transport and one copy (0.1 s of a core for an 8K
        frame, on its input's reader thread). A camera's resolution is its configuration, so
        the first such frame drops the subscription for a while (10 s, doubling up to 60 s
        while it goes on): DDS sends this node nothing of that input, and the others keep the
        machine's share.
        """
        source = self.sources[index]
        self._count_bad(source, error)
        backoff = self._refusals[index]
        if not backoff.record_failure():
            return
        with self._readers_lock:
            reader = self._readers[index] if index < len(self._readers) else None
            if reader is None:
                return
            self._readers[index] = None
        reader.close()  # called on the reader's own thread: it ends after this message
        seconds = backoff.retry_at - time.monotonic()
        why = (f'not taking its frames for {seconds:.0f} s after {backoff.failures} in a row '
               f'over the limits: {error}')
        self.stats[source].on_paused(why)
        self._log_once(source, 'paused', f'{source}: {why}')

    def _resume_paused(self) -> None:
        """Subscribe again to the paused inputs whose pause is over (the diagnostics timer)."""
        now = time.monotonic()
        with self._readers_lock:
            for index, reader in enumerate(self._readers):
                if reader is None and now >= self._refusals[index].retry_at:
                    self._readers[index] = self._subscribe(index)
                    self.stats[self.sources[index]].on_paused('')

    def _on_image(self, raw: Buffer, index: int, read: Callable) -> None:
        """
        Store a frame for the runner, unless it would cost more than the limits allow.

        Called on the input's reader thread. The message arrives serialized and is read in
        place (its pixels a view of ``raw``); the limits are judged from its (or its
        JPEG/PNG's) header, so an oversized frame is dropped here having cost one copy, and
        never holds up the other inputs.
        """
        batcher, sources, stats = self.batcher, self.sources, self.stats
        if batcher is None or index >= len(sources):  # stopped while this message was taken
            return
        source = sources[index]
        stats[source].on_received()
        try:
            msg = read(raw)
            check_limits(msg, self.limits)
        except ImageConversionError as exc:
            if exc.cause == 'too_large':
                self._refused(index, exc)
            else:
                self._count_bad(source, exc)
            return
        except Exception as exc:  # noqa: BLE001 (rclpy's deserialisation of a broken message)
            self._count_bad(source, ImageConversionError(
                f'cannot read the message ({len(raw)} bytes): {one_line(exc)}', 'decode'))
            return
        stamp = msg.header.stamp
        ahead_ns = stamp.sec * 1_000_000_000 + stamp.nanosec - \
            self.node.get_clock().now().nanoseconds
        usable = -self._stamp_window_ns[1] <= ahead_ns <= self._stamp_window_ns[0]
        if not usable:
            stats[source].on_clock_skew(ahead_ns / 1e9)
            self._log_once(source, CLOCK_SKEW, f'{source}: header stamp {ahead_ns / 1e9:+.3f} '
                           f's off the node clock (allowed: {self._stamp_window_ns[0] / 1e9:g} '
                           f's ahead, stats_window_s behind); its latency is not counted '
                           f'(clock_skew)')
        self._refusals[index].record_success()
        if batcher.put(Frame(source, msg, time.monotonic(), msg.header, usable)):
            stats[source].on_dropped()

    def _on_incompatible_qos(self, info, index: int) -> None:
        sources, stats = self.sources, self.stats
        source = sources[index] if index < len(sources) else str(index)
        policy = QoSPolicyKind(info.last_policy_kind).name
        if source in stats:
            stats[source].on_qos_incompatible(policy, info.total_count)
        admitted, _ = self.log_throttle.admit((source, 'qos'))
        if admitted:
            self.node.get_logger().warning(
                f'{source}: a publisher offers a QoS incompatible with this subscription '
                f'({policy}); no frames arrive from it. Match qos_reliability/qos_depth to '
                f'the camera')

    def _convert(self, msg):
        if isinstance(msg, (CompressedImage, CompressedImageView)):
            return compressed_to_array(msg)
        return image_to_array(msg, keep_nv12=self.settings.keep_nv12)

    def _on_bad_frame(self, frame: Frame, error: InferError) -> None:
        self._count_bad(frame.source, error)

    def _count_bad(self, source: str, error: InferError) -> None:
        """Count a frame dropped as bad, by cause, and say so in a throttled line."""
        cause = error.cause if isinstance(error, ImageConversionError) else 'image'
        self.stats[source].on_conversion_error(cause)
        self._log_once(source, cause, f'{source}: bad frame dropped: {error}')

    def _log_once(self, source: str, cause: str, line: str) -> None:
        """Log ``line``: the first of its cause at once, then at most one per period."""
        admitted, suppressed = self.log_throttle.admit((source, cause))
        if admitted:
            more = f' ({suppressed} more since the last report)' if suppressed else ''
            self.node.get_logger().warning(f'{line}{more}')

    def _on_internal_error(self, message: str) -> None:
        admitted, _ = self.log_throttle.admit(('internal', message))
        if admitted and self.node.context.ok():
            self.node.get_logger().error(f'internal error: {message}')

    def _deliver(self, result: FrameResult) -> None:
        if not self.node.context.ok():  # shutting down: nothing can be published any more
            return
        start, cpu = time.monotonic(), time.thread_time()
        self._sizes[result.frame.source] = result.image_size
        if self.tracking is not None:
            self._track(result)
            tracked = time.thread_time()
            self.model_stats.on_cpu('track', (tracked - cpu) * 1e3)
            cpu = tracked
        self.results.publish(result)
        self.model_stats.on_cpu('publish', (time.thread_time() - cpu) * 1e3)
        result.stage_ms['publish'] = (time.monotonic() - start) * 1e3
        if result.frame.stamp_usable:  # a skewed stamp would make the latency nonsense
            stamp = result.frame.meta.stamp
            stamp_ns = stamp.sec * 1_000_000_000 + stamp.nanosec
            result.stage_ms['e2e'] = (self.node.get_clock().now().nanoseconds - stamp_ns) / 1e6
        self.stats[result.frame.source].on_published(result.stage_ms)

    def _track(self, result: FrameResult) -> None:
        """
        Give the detections of ``result`` their track IDs.

        A head that did not run on this frame gets the tracker's predicted boxes (shadow
        tracking), said to be measured on the frame it last ran on.
        """
        tracking, source, t = self.tracking, result.frame.source, result.frame.received
        if result.heads is None:
            result.detections = tracking.update(source, '', result.detections, t)
            return
        ran = set()
        for output in result.heads:
            if output.detections is not None:
                output.detections = tracking.update(source, output.head, output.detections, t)
                self._measured[(source, output.head)] = result.frame.meta
                ran.add(output.head)
        for head in tracking.streams:
            predicted = None if head in ran else tracking.predict(source, head, t)
            if predicted is not None:
                result.heads.append(HeadOutput(head, predicted, [], 0.0, 0.0,
                                               self._measured[(source, head)]))
        result.detections = [d for output in result.heads for d in output.detections or ()]

    def _on_skipped(self, frame: Frame) -> None:
        """Publish the predicted boxes of a frame no head ran on (shadow tracking)."""
        size = self._sizes.get(frame.source)
        if size is None or not self.node.context.ok():  # no frame of this input has run yet
            return
        result = FrameResult(frame, None, '', [], heads=[], image_size=size)
        self._track(result)
        if result.heads:
            self.results.publish(result)

    def _clear_gone_qos_clashes(self) -> None:
        """Forget a QoS clash once no publisher on the graph still offers an incompatible QoS."""
        for topic, qos, source in zip(self.settings.topics, self.settings.qos, self.sources):
            stats = self.stats[source]
            if not stats.qos_incompatible:
                continue
            if not any(qos_check_compatible(info.qos_profile, qos)[0] == QoSCompatibility.ERROR
                       for info in self.node.get_publishers_info_by_topic(topic.topic)):
                stats.clear_qos_incompatible()

    def _publish_diagnostics(self) -> None:
        with self._lock:
            if self.pipeline is None or self.diagnostics_pub is None:
                return
            self._resume_paused()
            self.diagnostics_pub.publish(self.diagnostics())

    def diagnostics(self) -> DiagnosticArray:
        """One status per input, per head of a packed model, and one for the model."""
        name = self.node.get_name()
        thresholds = self.settings.thresholds
        model_error = self.model_stats.current_error()
        self._clear_gone_qos_clashes()
        reports = [self.stats[s].report(input_status(name, s), thresholds, model_error)
                   for s in self.sources]
        if self.tracking is not None:
            for source, report in zip(self.sources, reports):
                report.values.update(self.tracking.values(source))
        if self.results.heads is not None:
            reports += self.results.heads.reports(name, self.pipeline)
        model_file = self.pipeline.model_path
        file_values, file_warning = self._model_file_report()
        report = self.model_stats.report(model_status(name, self.model_stats.model), {
            'backend': self.settings.backend, 'batch': self.pipeline.model.batch.describe(),
            'model_file': model_file or '-',
            'model_file_present': str(not model_file or os.path.isfile(model_file)).lower(),
            **file_values})
        if report.values['model_file_present'] == 'false' and report.level == Level.OK:
            report.level = Level.WARN  # still serving from memory, but a reload would fail
            report.message = f'model file {model_file} is gone; {report.message}'
        elif file_warning and report.level == Level.OK:
            report.level = Level.WARN  # serving the loaded model, not the file's
            report.message = f'{file_warning}; {report.message}'
        reports.append(report)
        return to_array(self.node.get_clock().now().to_msg(), reports,
                        self.node.get_fully_qualified_name())

    # -- the model file under a running node ---------------------------------------------

    def _watch_model_file(self, pipeline: Pipeline, p: Dict, config: PipelineConfig,
                          heads: List[HeadConfig]) -> Optional[ModelFileWatching]:
        """
        Take the loaded file's size, times and content hash as the baseline of its watch.

        None when it is not watched: ``model_check_period_s`` 0, or no single model file (a
        pack of head files).
        """
        if not pipeline.model_path or p['model_check_period_s'] <= 0:
            return None
        cut_tensors, trunk_file = p['cut_tensors'], p['trunk_file']

        def rebuild() -> Pipeline:
            if heads:
                return MultiHeadPipeline.from_config(config, heads, cut_tensors, trunk_file)
            return DetectionPipeline.from_config(config)
        return ModelFileWatching(ModelFileWatch(pipeline.model_path), p['reload_on_change'],
                                 p['model_check_period_s'], rebuild, p['input_size'])

    def _start_model_watch(self) -> None:
        """Check the model file every ``model_check_period_s``, on the watch's own thread."""
        watching = self.model_file
        if watching is None:
            return
        watching.cancel = threading.Event()
        watching.watch.start(watching.period_s,
                             lambda status: self._on_model_file_checked(watching, status),
                             lambda exc: self._on_internal_error(f'model-watch: {one_line(exc)}'))

    def _stop_model_watch(self) -> None:
        """End the checks and a reload in progress (its load runs out; it is not swapped in)."""
        watching = self.model_file
        if watching is None:
            return
        watching.cancel.set()
        watching.watch.stop()
        thread, watching.thread = watching.thread, None
        if thread is not None:
            thread.join(RELOAD_JOIN_S)
        watching.reloads.abandoned()  # tried again once started again

    def _model_file_report(self) -> Tuple[Dict[str, str], str]:
        """Return the model status's values on the model file, and its warning ('' for none)."""
        watching = self.model_file
        if watching is None:
            return {'model_file_state': 'unchecked' if self.pipeline.model_path else '-'}, ''
        return file_report(watching.watch.status(), watching.reloads)

    def _on_model_file_checked(self, watching: ModelFileWatching, status: WatchStatus) -> None:
        """After each check, on the watch's thread: log a change; start a reload if asked."""
        self._log_model_file(watching, status)
        signature = None if watching.cancel.is_set() else watching.reloads.begin(status)
        if signature is None:
            return
        watching.thread = threading.Thread(target=self._reload_model, args=(watching, signature),
                                           name='model-reload', daemon=True)
        watching.thread.start()

    def _log_model_file(self, watching: ModelFileWatching, status: WatchStatus) -> None:
        """Log one line when the file changes, is gone, or is back as loaded (throttled)."""
        logged = (status.state, status.seen.digest if status.seen else '')
        if logged == watching.logged:
            return
        previous, watching.logged = watching.logged, logged
        logger, path = self.node.get_logger(), status.path
        if status.state == UNCHANGED:
            if previous[0] != UNCHANGED:
                logger.info(f'model file {path} is back as it was loaded')
            return
        admitted, suppressed = self.log_throttle.admit(('model file', status.state))
        if not admitted:
            return
        more = f' ({suppressed} more since the last report)' if suppressed else ''
        if status.seen is None:
            logger.warning(f'model file {path} is gone ({status.reason}); serving the loaded '
                           f'model from memory, but a reload would fail{more}')
            return
        then = 'the new one is loaded in the background once it stays alike' \
            if watching.reloads.enabled else 'restart the node (or set reload_on_change) to ' \
            'serve the new one'
        logger.warning(f'model file {path} changed on disk since it was loaded '
                       f'({status.describe()}); serving the loaded model; {then}{more}')

    def _reload_model(self, watching: ModelFileWatching, signature: FileSignature) -> None:
        """
        Load and warm up the changed file on this thread of its own; then swap it in.

        The loaded model serves meanwhile, and goes on serving when the new file does not
        load or cannot replace it: that version of the file is then not tried again.
        """
        started = time.monotonic()
        pipeline: Optional[Pipeline] = None
        why = ''
        try:
            pipeline = watching.rebuild()
            pipeline.warm_up()
        except Exception as exc:  # noqa: BLE001 (a corrupt file; the backend may raise anything)
            pipeline, why = None, one_line(exc)
        load_s = time.monotonic() - started
        if watching.cancel.is_set() or watching.watch.current(signature) != signature:
            # stopped, or the file changed again while loading (which version loaded is not
            # known): the next check tries the newer one
            watching.reloads.abandoned()
            return
        if pipeline is None:
            self._reload_failed(watching, signature, why)
            return
        if not self._acquire_unless(watching.cancel):
            watching.reloads.abandoned()
            return
        try:
            if watching.cancel.is_set() or self.model_file is not watching or self.runner is None:
                watching.reloads.abandoned()
                return
            problem = self._swap_problem(pipeline)
            if problem:
                self._reload_failed(watching, signature, problem, refused=True)
                return
            self._swap_in(pipeline)
            watching.watch.rebase(signature)
            watching.logged = (UNCHANGED, signature.digest)
            watching.reloads.succeeded(signature)
        finally:
            self._lock.release()
        self.node.get_logger().info(
            f'model file {watching.watch.path} changed on disk: the new model loaded and warmed '
            f'up in {load_s:.1f} s and serves from the next batch '
            f'({pipeline.model.batch.describe()} batch, input '
            f'{input_description(watching.input_size, pipeline)}, '
            f'{len(pipeline.runtimes)} runtime(s)); model: {pipeline.model_note}')

    def _reload_failed(self, watching: ModelFileWatching, signature: FileSignature, why: str,
                       refused: bool = False) -> None:
        watching.reloads.failed(signature, why, refused)
        admitted, _ = self.log_throttle.admit(('model file', 'reload failed', why))
        if admitted:
            what = 'cannot replace the loaded one while running' if refused else 'does not load'
            self.node.get_logger().warning(
                f'model file {watching.watch.path} changed but the new one {what}: {why}; '
                f'serving the loaded model (tried again once the file changes)')

    def _acquire_unless(self, cancel: threading.Event) -> bool:
        """
        Take the steps' lock, unless ``cancel`` is set first.

        ``stop`` holds the lock while it waits for the reload thread, having set ``cancel``.
        """
        while not cancel.is_set():
            if self._lock.acquire(timeout=0.05):
                return True
        return False

    def _swap_problem(self, new: Pipeline) -> str:
        """
        Say why ``new`` cannot replace the running pipeline while the node runs; '' if it can.

        A new input size, pre-processing, batch size, class names or score threshold are taken;
        what the publishers, the runner threads or the image conversion were set up for
        (topics per task and head, keypoints, runtimes, NV12 input) must stay.
        """
        old = self.pipeline
        if len(new.runtimes) != len(old.runtimes):
            return (f'it loads as {len(new.runtimes)} runtime(s), the loaded model runs '
                    f'{len(old.runtimes)}')
        if (new.preprocessor.layout == NV12) != (old.preprocessor.layout == NV12):
            return (f'it takes {new.preprocessor.layout} input, the loaded model '
                    f'{old.preprocessor.layout}')
        if self.heads:
            def outputs(pipeline):
                return ({name: len(head.model.outputs)
                         for name, head in pipeline.packed.heads.items()},
                        {name: (d.decoder.task, d.decoder.num_keypoints)
                         for name, d in pipeline.decoding.items()})
            if outputs(new) != outputs(old):
                return "its heads' outputs, tasks or keypoints differ from the loaded model's"
            return ''
        if (new.task, new.decoder.num_keypoints) != (old.task, old.decoder.num_keypoints):
            return (f'its task is {new.task} with {new.decoder.num_keypoints} keypoint(s), the '
                    f"loaded model's {old.task} with {old.decoder.num_keypoints}")
        return ''

    def _swap_in(self, new: Pipeline) -> None:
        """
        Serve ``new`` from the runner's next batch on (under the lock).

        It keeps the heads' current rates and the score threshold set; a threshold of 0 is
        the new model's own.
        """
        old = self.pipeline
        if self.heads:
            for name, rate in old.head_rates.items():
                new.set_rate(name, rate.rate_hz, rate.every_n_frames)
                new.set_enabled(name, rate.enabled)
        own = new.score_threshold
        self.settings = dataclasses.replace(self.settings, model_score_threshold=own)
        self.pipeline = new
        self._set_score_threshold(self.node.get_parameter('score_threshold').value or own)
        self.runner.swap_pipeline(new)
        if new.backend is not None:
            self.model_stats.npu_load = new.backend.npu_load
        if list(new.class_names) != list(old.class_names):
            self.results.publish_class_names(self._header(), new.class_names)


def input_description(input_size: str, pipeline: Pipeline) -> str:
    """
    Describe the size the model runs at, for the start-up line.

    It is the size set, the model's own, or the image's.
    """
    width, height = pipeline.preprocessor.model_size
    return input_size or (f'{width}x{height}' if width and height else 'at image size')
