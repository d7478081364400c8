"""infer_node: camera topics in; detections, an optional debug image and /diagnostics out.

Subscription callbacks only store the newest message of each input; conversion, inference and
publishing run on the core's StreamRunner threads, so receiving never waits for the model.

The construction comes in pieces (load, start, stop, release: :class:`InferPieces`) that the
managed variant, infer_lifecycle_node, calls from its lifecycle transitions.
"""

import os
import threading
import time
from typing import Any, Dict, List

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSPolicyKind
try:
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ..core.annotate import draw_detections
from ..core.backends import backend_names
from ..core.backends.selection import AUTO, parse_options
from ..core.errors import BackendError, InferError
from ..core.crop_stage import CropConfig
from ..core.head_scheduler import HeadRate
from ..core.multi_head import HeadConfig, MultiHeadPipeline
from ..core.frame_slots import Frame, FrameSlots
from ..core.health import HealthThresholds, Level, ModelStats, SourceStats
from ..core.log_throttle import LogThrottle
from ..core.nv12 import nv12_to_bgr, pixel_size
from ..core.geometry import parse_size
from ..core.pipeline import DetectionPipeline, PipelineConfig
from ..core.stream_runner import FrameResult, StreamRunner, one_line
from ..core.tensors import NV12
from . import detection_msgs
from .diagnostics import to_array
from .head_outputs import HeadOutputs
from .image_conversion import array_to_image_msg, compressed_to_array, image_to_array
from .node_main import run_node
from .parameters import (InvalidParameter, ParamSpec, boolean, declare, each_one_of, integer,
                         integers, key_values, number, one_of, size_text, string, strings)
from .qos import LATCHED, RELIABILITY, image_qos, per_input


PARAMETERS = [
    strings('inputs', ['image_raw'], 'sensor_msgs/Image topics to run the model on'),
    strings('compressed_inputs', [], 'sensor_msgs/CompressedImage topics (jpeg, png)'),
    strings('output_topics', [], 'detections topic per input, in the order of inputs then '
            'compressed_inputs (default: <resolved input topic>/detections)'),
    strings('qos_reliability', ['best_effort'], 'per input, or one for all: best_effort or '
            'reliable', check=each_one_of(tuple(RELIABILITY))),
    integers('qos_depth', [1], 'per input, or one for all: subscription queue depth', 1, 100),
    string('model', 'centerface', 'built-in model name or model file'),
    string('model_name', '', 'one model of a multi-model file'),
    string('backend', 'onnxruntime', 'inference backend; auto: the board\'s NPU (hobot, rknn), '
           'else onnxruntime', check=lambda v: None if v in backend_names() + [AUTO]
           else f'available: {", ".join(backend_names() + [AUTO])}'),
    strings('backend_options', [], 'backend options as key=value, e.g. rknn.core_mask=auto; a '
            '"backend." prefix applies one to that backend only', check=key_values),
    string('decoder', '', 'output decoder of a model file: centerface, yolov8, yolov5, ssd, '
           'rdk_yolov8, rdk_yolov5, rknn_yolov8, rknn_yolov5'),
    strings('decoder_options', [], 'decoder options as key=value, e.g. num_classes=80',
            check=key_values),
    string('labels_file', '', 'class names, one per line'),
    strings('class_names', [], 'class names, when no labels file is given'),
    string('input_size', '', 'model input WxH, e.g. 640x480 (empty: the model\'s own or the '
           'image\'s)', check=size_text),
    integer('threads', 0, 'inference threads per runtime (0: one per core)', 0, 64),
    integer('max_batch_size', 0, 'frames of distinct inputs run together (0: one per input; '
            'a fixed-batch model uses its own size and pads)', 0, 64),
    number('max_batch_delay_ms', 10.0, 'longest wait of the oldest frame for a batch to fill',
           0.0, 1000.0),
    integer('num_runtimes', 0, 'engine instances running batches concurrently (0: the '
            'backend\'s choice, one per NPU core on RK3588/RK3576, else 1)', 0, 16),
    string('crop_model', '', 'second-stage model run on the crops of the detections'),
    string('crop_output', 'class', 'class (argmax and score) or embedding (the vector)',
           check=one_of(('class', 'embedding'))),
    number('crop_margin', 0.1, 'crop margin on each side, as a fraction of the box', 0.0, 2.0),
    strings('crop_class_names', [], 'class names of the crop model'),
    integer('crop_max_batch', 16, 'crops per run of a dynamic-batch crop model', 1, 256),
    number('crop_scale', 1.0, 'crop pre-processing: (pixel * scale - mean) / std', 1e-6, 1e6),
    ParamSpec('crop_mean', [0.0, 0.0, 0.0], 'crop pre-processing mean (RGB)',
              Parameter.Type.DOUBLE_ARRAY, True, None,
              lambda v: None if len(v) == 3 else 'needs three values'),
    ParamSpec('crop_std', [1.0, 1.0, 1.0], 'crop pre-processing std (RGB)',
              Parameter.Type.DOUBLE_ARRAY, True, None,
              lambda v: None if len(v) == 3 and all(x != 0 for x in v)
              else 'needs three non-zero values'),
    string('cache_dir', '', 'cache for converted built-in models (empty: ~/.cache)'),
    number('score_threshold', 0.5, 'minimum detection score', 0.0, 1.0, read_only=False),
    string('detections_format', 'auto', 'auto (vision_msgs if installed), vision_msgs or json',
           check=one_of(detection_msgs.FORMATS)),
    boolean('publish_debug_image', False, 'publish <input>/debug_image with boxes drawn'),
    number('expected_rate_hz', 0.0, 'WARN when an output rate is below this (0: off)', 0.0,
           1000.0, read_only=False),
    number('latency_budget_ms', 0.0, 'WARN when end-to-end p99 is above this (0: off)', 0.0,
           100000.0, read_only=False),
    number('stale_timeout_s', 3.0, 'STALE when an input is silent this long', 0.1, 3600.0,
           read_only=False),
    number('stats_window_s', 10.0, 'rolling window of the statistics', 1.0, 600.0),
    strings('head_names', [], 'heads of a packed model, each configured under heads.<name>; '
            'empty: a single-model detector'),
    strings('cut_tensors', [], 'split heads: cut tensors overriding the automatic split'),
    string('trunk_file', '', 'a pack of head files: the trunk model whose outputs feed them'),
    number('diagnostics_period_s', 1.0, 'period of /diagnostics', 0.1, 60.0),
]


def head_parameters(name: str) -> list:
    """The parameters of one head of a packed model, under ``heads.<name>.``."""
    prefix = f'heads.{name}.'
    return [
        strings(prefix + 'outputs', [], 'outputs of the model file this head computes (split)'),
        string(prefix + 'file', '', 'this head\'s own model file (a pack)'),
        string(prefix + 'model_name', '', 'one model of a packed file'),
        string(prefix + 'decoder', '', 'decoder of its outputs (empty: publish raw tensors)'),
        strings(prefix + 'class_names', [], 'class names of its detections'),
        number(prefix + 'rate_hz', 0.0, 'runs per second (0: every frame, or every_n_frames)',
               0.0, 1000.0, read_only=False),
        integer(prefix + 'every_n_frames', 0, 'run on every n-th frame instead of a rate',
                0, 100000, read_only=False),
        boolean(prefix + 'enabled', True, 'a disabled head costs nothing', read_only=False),
    ]


def current_values(node: Node, specs: List[ParamSpec]) -> Dict[str, Any]:
    """The values the parameters of ``specs`` have now (a list declared empty and never set
    reads as empty)."""
    values = {}
    for spec in specs:
        try:
            values[spec.name] = node.get_parameter(spec.name).value
        except ParameterUninitializedException:
            values[spec.name] = []
    return values


def warm_up(pipeline, head_names: List[str]) -> None:
    """One run of every runtime on a blank frame at the size the model runs at, so the first
    camera frame does not pay for the backend's lazy set-up."""
    w, h = pipeline.preprocessor.target_size((640, 480))
    blank = np.zeros((h, w, 3), np.uint8)
    batch = pipeline.prepare([blank], 'bgr')
    frame = Frame('warm-up', None, plan=list(head_names))
    for runtime in range(len(pipeline.runtimes)):
        pipeline.run_batch([frame], [(blank, 'bgr')], batch, runtime)


class _PublisherFactory:
    """What HeadOutputs needs of a node: ``create_publisher``, here the node's own kind."""

    def __init__(self, create):
        self.create_publisher = create


class InferPieces:
    """infer_node's construction in four pieces, shared by the plain and the managed node:

    - ``_load``: validate the parameters, load and warm up the model, create the publishers;
    - ``_start``: start the stream runner, subscribe to the inputs, run the diagnostics timer;
    - ``_stop``: unsubscribe, stop the runner threads and the timer; the model stays loaded;
    - ``_release``: stop, destroy the publishers and drop the model.

    InferNode calls load and start in its constructor and release when destroyed;
    InferLifecycleNode calls them from its transitions. Mixed into a Node class.
    """

    MANAGED = False  # lifecycle publishers for the outputs

    def _init_pieces(self) -> None:
        self._lock = threading.RLock()  # transitions against the diagnostics timer
        self.log_throttle = LogThrottle()
        self.pipeline = None
        self.heads: List[HeadConfig] = []
        self.sources: List[str] = []
        self.stats: Dict[str, SourceStats] = {}
        self.publishers_by_source: Dict[str, Any] = {}
        self.debug_publishers: Dict[str, Any] = {}
        self.head_outputs = None
        self.label_info_pub = None
        self.diagnostics_pub = None
        self.slots = None
        self.runner = None
        self._settings: Dict[str, Any] = {}
        self._own_publishers: list = []
        self._image_subscriptions: list = []
        self._diagnostics_timer = None

    # -- parameters ----------------------------------------------------------------------

    def _specs(self, specs: List[ParamSpec]) -> List[ParamSpec]:
        """The parameter table as this node declares it (the plain node: as written)."""
        return specs

    def _declare_head(self, name: str) -> HeadConfig:
        """The head's parameters, declared the first time its name is given."""
        prefix = f'heads.{name}.'
        specs = self._specs(head_parameters(name))
        undeclared = [spec for spec in specs if not self.has_parameter(spec.name)]
        if undeclared:
            declare(self, undeclared, self._apply)
        given = current_values(self, specs)
        for spec in specs:  # values set while a managed node was unconfigured
            reason = spec.problem(given[spec.name])
            if reason:
                raise InvalidParameter(reason)
        v = {k[len(prefix):]: value for k, value in given.items()}
        return HeadConfig(name, v['outputs'], v['file'], v['model_name'], v['decoder'],
                          v['class_names'], HeadRate(name, v['rate_hz'], v['every_n_frames'],
                                                     v['enabled']))

    def _apply(self, name: str, value) -> None:
        pipeline, thresholds = self.pipeline, self._settings.get('thresholds')
        if pipeline is None:  # not loaded: the value is read when it is
            return
        if name.startswith('heads.'):
            head, field = name[len('heads.'):].rsplit('.', 1)
            if field == 'rate_hz':
                pipeline.set_rate(head, rate_hz=value)
            elif field == 'every_n_frames':
                pipeline.set_rate(head, every_n_frames=value)
            elif field == 'enabled':
                pipeline.set_enabled(head, value)
        elif name == 'score_threshold':
            pipeline.score_threshold = value
        elif name in ('expected_rate_hz', 'latency_budget_ms', 'stale_timeout_s'):
            setattr(thresholds, name, value)

    def _resolve(self, topic: str, what: str) -> str:
        try:
            return self.resolve_topic_name(topic)  # namespace and remapping applied
        except Exception as exc:  # noqa: BLE001 (rclpy's RCLError names the broken rule)
            raise InvalidParameter(f'{what} {topic!r}: {str(exc).split(", at ")[0]}') from None

    # -- the four pieces -----------------------------------------------------------------

    def _load(self, p: Dict[str, Any]) -> float:
        """Everything up to receiving frames; returns the seconds the model took to load and
        warm up. Raises InvalidParameter or InferError, having created no ROS entity."""
        topics = [(t, Image) for t in p['inputs']] + \
                 [(t, CompressedImage) for t in p['compressed_inputs']]
        if not topics:
            raise InvalidParameter('inputs and compressed_inputs are both empty: give at least '
                                   'one image topic')
        try:
            reliability = per_input(p['qos_reliability'], len(topics), 'qos_reliability')
            depth = per_input(p['qos_depth'], len(topics), 'qos_depth')
        except ValueError as exc:
            raise InvalidParameter(str(exc)) from None
        if p['output_topics'] and len(p['output_topics']) != len(topics):
            raise InvalidParameter(f'output_topics has {len(p["output_topics"])} names for '
                                   f'{len(topics)} inputs')
        sources: List[str] = []
        for topic, _ in topics:
            source = self._resolve(topic, 'input topic')
            if source in sources:
                raise InvalidParameter(f'input topic {source} is listed twice')
            sources.append(source)
        outputs = [self._resolve(t, 'output topic') for t in p['output_topics']] or \
            [f'{source}/detections' for source in sources]
        fmt = detection_msgs.resolve_format(p['detections_format'])
        config = PipelineConfig(
            model=p['model'], model_name=p['model_name'], backend=p['backend'],
            backend_options={'onnxruntime.intra_op_threads': p['threads'],
                             **parse_options(p['backend_options'])},
            decoder=p['decoder'], decoder_options=parse_options(p['decoder_options']),
            labels_file=p['labels_file'], class_names=p['class_names'],
            input_size=parse_size(p['input_size']) if p['input_size'] else None,
            score_threshold=p['score_threshold'], cache_dir=p['cache_dir'] or None,
            num_runtimes=p['num_runtimes'], crop=CropConfig(
                model=p['crop_model'], output=p['crop_output'], margin=p['crop_margin'],
                class_names=p['crop_class_names'], max_batch=p['crop_max_batch'],
                preprocess={'resize': 'stretch', 'scale': p['crop_scale'],
                            'mean': tuple(p['crop_mean']), 'std': tuple(p['crop_std'])})
            if p['crop_model'] else None)
        heads = [self._declare_head(name) for name in p['head_names']]
        started = time.monotonic()
        if heads:
            pipeline = MultiHeadPipeline.from_config(config, heads, p['cut_tensors'],
                                                     p['trunk_file'])
        else:
            pipeline = DetectionPipeline.from_config(config)
        try:
            warm_up(pipeline, [head.name for head in heads])
        except Exception as exc:  # noqa: BLE001 (the backend may raise anything)
            raise BackendError(f'warm-up run of {p["model"]} on a blank frame failed: '
                               f'{one_line(exc)}') from None
        load_s = time.monotonic() - started

        with self._lock:
            self.pipeline, self.heads, self.format = pipeline, heads, fmt
            window = p['stats_window_s']
            max_batch = p['max_batch_size'] or len(sources)
            self._settings = {
                'thresholds': HealthThresholds(p['expected_rate_hz'], p['latency_budget_ms'],
                                               p['stale_timeout_s']),
                'topics': [(source, msg_type) for source, (_, msg_type) in zip(sources, topics)],
                'qos': [image_qos(r, d) for r, d in zip(reliability, depth)],
                'max_batch': max_batch,
                'max_batch_delay_s': p['max_batch_delay_ms'] / 1e3,
                'diagnostics_period_s': p['diagnostics_period_s'],
                'backend': p['backend'],
                # a model that takes NV12 gets camera nv12 untouched (crops need BGR)
                'keep_nv12': pipeline.preprocessor.layout == NV12 and not p['crop_model'],
                'summary': (f'{p["model"]} on {p["backend"]} ({pipeline.model.batch.describe()} '
                            f'batch, input {input_description(p["input_size"], pipeline)}, '
                            f'batches of up '
                            f'to {pipeline.model.batch.fixed_size or max_batch} within '
                            f'{p["max_batch_delay_ms"]:g} ms, {len(pipeline.runtimes)} '
                            f'runtime(s)), inputs {", ".join(sources)}, detections as {fmt}'
                            + (f'; {pipeline.backend_note}' if p['backend'] == AUTO else '')),
            }
            self.sources = sources
            self.stats = {source: SourceStats(source, window) for source in sources}
            self.model_stats = ModelStats(p['model'], window, runtimes=len(pipeline.runtimes))
            if pipeline.backend is not None:
                self.model_stats.npu_load = pipeline.backend.npu_load
            message_type = detection_msgs.message_type(fmt)
            for source, out in zip(sources, outputs):
                if not heads:  # a packed model's heads publish on topics of their own
                    self.publishers_by_source[source] = self._publisher(message_type, out, 10)
                if p['publish_debug_image']:
                    self.debug_publishers[source] = self._publisher(
                        Image, f'{source}/debug_image', 5)
            self.head_outputs = HeadOutputs(
                _PublisherFactory(self._publisher), sources, heads, fmt,
                {name: len(head.model.outputs) for name, head in pipeline.packed.heads.items()},
                window) if heads else None
            if fmt == 'vision_msgs':
                self.label_info_pub = self._publisher(
                    detection_msgs.vision_msgs_module().LabelInfo, 'label_info', LATCHED)
            # not a lifecycle publisher: the timer that uses it runs only while started
            self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        return load_s

    def _start(self) -> None:
        """Frames in: the runner threads, then the subscriptions; and the diagnostics."""
        with self._lock:
            s = self._settings
            self.slots = FrameSlots(self.sources)
            self.runner = StreamRunner(self.pipeline, self.slots, self._convert, self._deliver,
                                       self._on_bad_frame, self._on_internal_error, self.stats,
                                       self.model_stats, s['max_batch'], s['max_batch_delay_s'])
            self.runner.start()
            receive_group = ReentrantCallbackGroup()
            for i, ((topic, msg_type), qos) in enumerate(zip(s['topics'], s['qos'])):
                self._image_subscriptions.append(self.create_subscription(
                    msg_type, topic, lambda msg, s=i: self._on_image(msg, s), qos,
                    callback_group=receive_group,
                    event_callbacks=SubscriptionEventCallbacks(
                        incompatible_qos=lambda info, s=i: self._on_incompatible_qos(info, s))))
            if self.label_info_pub is not None:
                self.label_info_pub.publish(detection_msgs.label_info(
                    self._header(), self.pipeline.class_names))
            self._diagnostics_timer = self.create_timer(
                s['diagnostics_period_s'], self._publish_diagnostics,
                callback_group=MutuallyExclusiveCallbackGroup())

    def _stop(self) -> None:
        """No more frames in: subscriptions, timer and runner threads end; the model stays."""
        with self._lock:
            for subscription in self._image_subscriptions:
                self.destroy_subscription(subscription)
            self._image_subscriptions = []
            if self._diagnostics_timer is not None:
                self.destroy_timer(self._diagnostics_timer)
                self._diagnostics_timer = None
            if self.runner is not None:
                self.runner.stop()
            self.runner = self.slots = None

    def _release(self) -> None:
        """Back to nothing loaded: stopped, publishers destroyed, the model dropped."""
        with self._lock:
            self._stop()
            for publisher in self._own_publishers:
                if self.MANAGED:
                    self.destroy_lifecycle_publisher(publisher)
                else:
                    self.destroy_publisher(publisher)
            if self.diagnostics_pub is not None:
                self.destroy_publisher(self.diagnostics_pub)
            self._own_publishers = []
            self.diagnostics_pub = self.label_info_pub = self.head_outputs = None
            # new containers, so a receive callback still running keeps consistent old ones
            self.sources, self.stats = [], {}
            self.publishers_by_source, self.debug_publishers = {}, {}
            self.pipeline, self.heads, self._settings = None, [], {}

    @property
    def loaded(self) -> bool:
        return self.pipeline is not None

    def _publisher(self, msg_type, topic: str, qos):
        if self.MANAGED:
            publisher = self.create_lifecycle_publisher(msg_type, topic, qos)
        else:
            publisher = self.create_publisher(msg_type, topic, qos)
        self._own_publishers.append(publisher)
        return publisher

    # -- frames in, results out ----------------------------------------------------------

    def _header(self) -> Header:
        return Header(stamp=self.get_clock().now().to_msg(), frame_id='')

    def _on_image(self, msg, index: int) -> None:
        slots, sources, stats = self.slots, self.sources, self.stats
        if slots is None or index >= len(sources):  # stopped while this message was taken
            return
        source = sources[index]
        stats[source].on_received()
        if slots.put(Frame(source, msg, time.monotonic(), msg.header)):
            stats[source].on_dropped()

    def _on_incompatible_qos(self, info, index: int) -> None:
        sources, stats = self.sources, self.stats
        source = sources[index] if index < len(sources) else str(index)
        policy = QoSPolicyKind(info.last_policy_kind).name
        if source in stats:
            stats[source].on_qos_incompatible(policy, info.total_count)
        admitted, _ = self.log_throttle.admit((source, 'qos'))
        if admitted:
            self.get_logger().warning(
                f'{source}: a publisher offers a QoS incompatible with this subscription '
                f'({policy}); no frames arrive from it. Match qos_reliability/qos_depth to '
                f'the camera')

    def _convert(self, msg):
        if isinstance(msg, CompressedImage):
            return compressed_to_array(msg)
        return image_to_array(msg, keep_nv12=self._settings['keep_nv12'])

    def _on_bad_frame(self, frame: Frame, error: InferError) -> None:
        cause = getattr(error, 'cause', 'image')
        self.stats[frame.source].on_conversion_error(cause)
        admitted, suppressed = self.log_throttle.admit((frame.source, cause))
        if admitted:
            more = f' ({suppressed} more since the last report)' if suppressed else ''
            self.get_logger().warning(f'{frame.source}: bad frame dropped: {error}{more}')

    def _on_internal_error(self, message: str) -> None:
        admitted, _ = self.log_throttle.admit(('internal', message))
        if admitted and self.context.ok():
            self.get_logger().error(f'internal error: {message}')

    def _deliver(self, result: FrameResult) -> None:
        if not self.context.ok():  # shutting down: nothing can be published any more
            return
        start = time.monotonic()
        source = result.frame.source
        header = result.frame.meta
        nv12 = result.channel_order == 'nv12'
        w, h = pixel_size(result.image) if nv12 else result.image.shape[1::-1]
        if result.heads is not None:
            self.head_outputs.publish(source, header, (w, h), result.heads)
        else:
            self.publishers_by_source[source].publish(
                detection_msgs.to_message(self.format, header, result.detections, (w, h)))
        if source in self.debug_publishers:
            bgr = nv12_to_bgr(result.image) if nv12 else result.image \
                if result.channel_order == 'bgr' or result.image.ndim == 2 \
                else cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR)
            self.debug_publishers[source].publish(
                array_to_image_msg(draw_detections(bgr, result.detections), 'bgr8', header))
        result.stage_ms['publish'] = (time.monotonic() - start) * 1e3
        stamp_ns = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
        result.stage_ms['e2e'] = (self.get_clock().now().nanoseconds - stamp_ns) / 1e6
        self.stats[source].on_published(result.stage_ms)

    def _publish_diagnostics(self) -> None:
        with self._lock:
            if self.pipeline is None or self.diagnostics_pub is None:
                return
            array = self._diagnostics()
            self.diagnostics_pub.publish(array)

    def _diagnostics(self) -> DiagnosticArray:
        name = self.get_name()
        thresholds = self._settings['thresholds']
        model_error = self.model_stats.current_error()
        reports = [self.stats[s].report(f'{name}: input {s}', thresholds, model_error)
                   for s in self.sources]
        if self.head_outputs is not None:
            reports += self.head_outputs.reports(name, self.pipeline)
        model_file = getattr(self.pipeline, 'model_path', '')
        report = self.model_stats.report(f'{name}: model {self.model_stats.model}', {
            'backend': self._settings['backend'], 'batch': self.pipeline.model.batch.describe(),
            'model_file': model_file or '-',
            'model_file_present': str(not model_file or os.path.isfile(model_file)).lower()})
        if report.values['model_file_present'] == 'false' and report.level == Level.OK:
            report.level = Level.WARN  # still serving from memory, but a reload would fail
            report.message = f'model file {model_file} is gone; {report.message}'
        reports.append(report)
        return to_array(self.get_clock().now().to_msg(), reports, self.get_fully_qualified_name())

    def destroy_node(self):
        self._release()
        return super().destroy_node()


def input_description(input_size: str, pipeline) -> str:
    """The size the model runs at, for the start-up line: set, the model's own, or the image's."""
    width, height = pipeline.preprocessor.model_size
    return input_size or (f'{width}x{height}' if width and height else 'at image size')


class InferNode(InferPieces, Node):
    """Loads, subscribes and publishes from construction until destroyed."""

    def __init__(self, **kwargs):
        super().__init__('infer_node', **kwargs)
        self._init_pieces()
        p = declare(self, PARAMETERS, self._apply)
        self._load(p)
        self._start()
        self.get_logger().info(self._settings['summary'])


def main(args=None):
    raise SystemExit(run_node(InferNode, args, threads=1))


if __name__ == '__main__':
    main()
