"""infer_node: camera topics in; detections, an optional debug image and /diagnostics out.

Subscription callbacks only store the newest message of each input; conversion, inference and
publishing run on the core's StreamRunner threads, so receiving never waits for the model.
"""

import os
import time
from typing import Any, Dict, List

import cv2
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
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
from ..core.errors import InferError
from ..core.crop_stage import CropConfig
from ..core.head_scheduler import HeadRate
from ..core.multi_head import HeadConfig, MultiHeadPipeline
from ..core.frame_slots import Frame, FrameSlots
from ..core.health import HealthThresholds, Level, ModelStats, SourceStats
from ..core.log_throttle import LogThrottle
from ..core.pipeline import DetectionPipeline, PipelineConfig, parse_size
from ..core.stream_runner import FrameResult, StreamRunner
from . import detection_msgs
from .diagnostics import to_array
from .head_outputs import HeadOutputs
from .image_conversion import array_to_image_msg, compressed_to_array, image_to_array
from .node_main import run_node
from .parameters import (InvalidParameter, ParamSpec, boolean, declare, each_one_of, integer,
                         integers, number, one_of, size_text, string, strings)
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
    string('backend', 'onnxruntime', 'inference backend', check=lambda v: None
           if v in backend_names() else f'available: {", ".join(backend_names())}'),
    string('decoder', '', 'output decoder of a model file: centerface, yolov8, yolov5, ssd'),
    string('labels_file', '', 'class names, one per line'),
    strings('class_names', [], 'class names, when no labels file is given'),
    string('input_size', '', 'model input WxH, e.g. 640x480 (empty: the model\'s own or the '
           'image\'s)', check=size_text),
    integer('threads', 0, 'inference threads per runtime (0: one per core)', 0, 64),
    integer('max_batch_size', 0, 'frames of distinct inputs run together (0: one per input; '
            'a fixed-batch model uses its own size and pads)', 0, 64),
    number('max_batch_delay_ms', 10.0, 'longest wait of the oldest frame for a batch to fill',
           0.0, 1000.0),
    integer('num_runtimes', 1, 'engine instances running batches concurrently', 1, 16),
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


class InferNode(Node):
    def __init__(self, **kwargs):
        super().__init__('infer_node', **kwargs)
        p = declare(self, PARAMETERS, self._apply)
        self.thresholds = HealthThresholds(p['expected_rate_hz'], p['latency_budget_ms'],
                                           p['stale_timeout_s'])
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
        self.format = detection_msgs.resolve_format(p['detections_format'])
        self.backend_name = p['backend']
        config = PipelineConfig(
            model=p['model'], model_name=p['model_name'], backend=p['backend'],
            backend_options={'intra_op_threads': p['threads']}
            if p['backend'] == 'onnxruntime' else {},
            decoder=p['decoder'], labels_file=p['labels_file'], class_names=p['class_names'],
            input_size=parse_size(p['input_size']) if p['input_size'] else None,
            score_threshold=p['score_threshold'], cache_dir=p['cache_dir'] or None,
            num_runtimes=p['num_runtimes'], crop=CropConfig(
                model=p['crop_model'], output=p['crop_output'], margin=p['crop_margin'],
                class_names=p['crop_class_names'], max_batch=p['crop_max_batch'],
                preprocess={'resize': 'stretch', 'scale': p['crop_scale'],
                            'mean': tuple(p['crop_mean']), 'std': tuple(p['crop_std'])})
            if p['crop_model'] else None)
        self.heads = [self._declare_head(name) for name in p['head_names']]
        if self.heads:
            self.pipeline = MultiHeadPipeline.from_config(config, self.heads,
                                                          p['cut_tensors'], p['trunk_file'])
        else:
            self.pipeline = DetectionPipeline.from_config(config)
        self.log_throttle = LogThrottle()
        window = p['stats_window_s']
        receive_group = ReentrantCallbackGroup()
        message_type = detection_msgs.message_type(self.format)
        self.sources: List[str] = []
        self.stats: Dict[str, SourceStats] = {}
        self.publishers_by_source: Dict[str, Any] = {}
        self.debug_publishers: Dict[str, Any] = {}
        self._image_subscriptions = []
        for i, ((topic, msg_type), rel, dep) in enumerate(zip(topics, reliability, depth)):
            sub = self.create_subscription(
                msg_type, topic, lambda msg, s=i: self._on_image(msg, s),
                image_qos(rel, dep), callback_group=receive_group,
                event_callbacks=SubscriptionEventCallbacks(
                    incompatible_qos=lambda info, s=i: self._on_incompatible_qos(info, s)))
            source = sub.topic_name  # resolved: namespace and remapping applied
            out = p['output_topics'][i] if p['output_topics'] else f'{source}/detections'
            if source in self.stats:
                raise InvalidParameter(f'input topic {source} is listed twice')
            self._image_subscriptions.append(sub)
            self.sources.append(source)
            self.stats[source] = SourceStats(source, window)
            if not self.heads:  # a packed model's heads publish on topics of their own
                self.publishers_by_source[source] = self.create_publisher(message_type, out, 10)
            if p['publish_debug_image']:
                self.debug_publishers[source] = self.create_publisher(
                    Image, f'{source}/debug_image', 5)
        self.model_stats = ModelStats(p['model'], window, runtimes=p['num_runtimes'])
        self.head_outputs = HeadOutputs(
            self, self.sources, self.heads, self.format,
            {name: len(head.model.outputs) for name, head in self.pipeline.packed.heads.items()},
            window) if self.heads else None
        if self.format == 'vision_msgs':
            self.label_info_pub = self.create_publisher(
                detection_msgs.vision_msgs_module().LabelInfo, 'label_info', LATCHED)
            header = self._header()
            self.label_info_pub.publish(detection_msgs.label_info(header,
                                                                  self.pipeline.class_names))
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.slots = FrameSlots(self.sources)
        self.runner = StreamRunner(self.pipeline, self.slots, self._convert, self._deliver,
                                   self._on_bad_frame, self._on_internal_error, self.stats,
                                   self.model_stats, p['max_batch_size'] or len(self.sources),
                                   p['max_batch_delay_ms'] / 1e3)
        self.runner.start()
        self.create_timer(p['diagnostics_period_s'], self._publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(
            f'{p["model"]} on {p["backend"]} ({self.pipeline.model.batch.describe()} batch, input '
            f'{p["input_size"] or "at image size"}, batches of up to {self.runner.max_batch} '
            f'within {p["max_batch_delay_ms"]:g} ms, {p["num_runtimes"]} runtime(s)), '
            f'inputs {", ".join(self.sources)}, detections as {self.format}')

    def _header(self) -> Header:
        return Header(stamp=self.get_clock().now().to_msg(), frame_id='')

    def _declare_head(self, name: str) -> HeadConfig:
        prefix = f'heads.{name}.'
        v = {k[len(prefix):]: value for k, value in
             declare(self, head_parameters(name), self._apply).items()}
        return HeadConfig(name, v['outputs'], v['file'], v['model_name'], v['decoder'],
                          v['class_names'], HeadRate(name, v['rate_hz'], v['every_n_frames'],
                                                     v['enabled']))

    def _apply(self, name: str, value) -> None:
        if name.startswith('heads.'):
            head, field = name[len('heads.'):].rsplit('.', 1)
            if field == 'rate_hz':
                self.pipeline.set_rate(head, rate_hz=value)
            elif field == 'every_n_frames':
                self.pipeline.set_rate(head, every_n_frames=value)
            elif field == 'enabled':
                self.pipeline.set_enabled(head, value)
        elif name == 'score_threshold':
            self.pipeline.score_threshold = value
        elif name in ('expected_rate_hz', 'latency_budget_ms', 'stale_timeout_s'):
            setattr(self.thresholds, name, value)

    def _on_image(self, msg, index: int) -> None:
        source = self.sources[index]
        self.stats[source].on_received()
        if self.slots.put(Frame(source, msg, time.monotonic(), msg.header)):
            self.stats[source].on_dropped()

    def _on_incompatible_qos(self, info, index: int) -> None:
        source = self.sources[index] if index < len(self.sources) else str(index)
        policy = QoSPolicyKind(info.last_policy_kind).name
        if source in self.stats:
            self.stats[source].on_qos_incompatible(policy, info.total_count)
        admitted, _ = self.log_throttle.admit((source, 'qos'))
        if admitted:
            self.get_logger().warning(
                f'{source}: a publisher offers a QoS incompatible with this subscription '
                f'({policy}); no frames arrive from it. Match qos_reliability/qos_depth to '
                f'the camera')

    @staticmethod
    def _convert(msg):
        if isinstance(msg, CompressedImage):
            return compressed_to_array(msg)
        return image_to_array(msg)

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
        h, w = result.image.shape[:2]
        if result.heads is not None:
            self.head_outputs.publish(source, header, (w, h), result.heads)
        else:
            self.publishers_by_source[source].publish(
                detection_msgs.to_message(self.format, header, result.detections, (w, h)))
        if source in self.debug_publishers:
            bgr = result.image if result.channel_order == 'bgr' or result.image.ndim == 2 \
                else cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR)
            self.debug_publishers[source].publish(
                array_to_image_msg(draw_detections(bgr, result.detections), 'bgr8', header))
        result.stage_ms['publish'] = (time.monotonic() - start) * 1e3
        stamp_ns = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
        result.stage_ms['e2e'] = (self.get_clock().now().nanoseconds - stamp_ns) / 1e6
        self.stats[source].on_published(result.stage_ms)

    def _publish_diagnostics(self) -> None:
        name = self.get_name()
        model_error = self.model_stats.current_error()
        reports = [self.stats[s].report(f'{name}: input {s}', self.thresholds, model_error)
                   for s in self.sources]
        if self.head_outputs is not None:
            reports += self.head_outputs.reports(name, self.pipeline)
        model_file = getattr(self.pipeline, 'model_path', '')
        report = self.model_stats.report(f'{name}: model {self.model_stats.model}', {
            'backend': self.backend_name, 'batch': self.pipeline.model.batch.describe(),
            'model_file': model_file or '-',
            'model_file_present': str(not model_file or os.path.isfile(model_file)).lower()})
        if report.values['model_file_present'] == 'false' and report.level == Level.OK:
            report.level = Level.WARN  # still serving from memory, but a reload would fail
            report.message = f'model file {model_file} is gone; {report.message}'
        reports.append(report)
        self.diagnostics_pub.publish(to_array(self.get_clock().now().to_msg(), reports,
                                              self.get_fully_qualified_name()))

    def destroy_node(self):
        self.runner.stop()
        return super().destroy_node()


def main(args=None):
    raise SystemExit(run_node(InferNode, args, threads=1))


if __name__ == '__main__':
    main()
