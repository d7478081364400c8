"""
infer_node's parameters: one table that both infer nodes declare, and the checks of a change.

Each entry gives the type, default, description, range and whether it may change at runtime;
``head_parameters`` gives the parameters of one head of a packed model, declared once its name
appears in ``head_names``.
"""

import dataclasses
from typing import Any, Dict, List, Optional, Set, Tuple

from hobot_npu_infer.core.backends import backend_names
from hobot_npu_infer.core.backends.selection import AUTO
from hobot_npu_infer.core.decoders import decoder_names
from hobot_npu_infer.core.multi_head.head_scheduler import HeadRate
from hobot_npu_infer.core.multi_head.multi_head_pipeline import HeadConfig
from hobot_npu_infer.core.pipeline.preprocess import CHANNEL_ORDERS, RESIZE_MODES
from hobot_npu_infer.core.tracking.tracker_config import TRACKERS
from hobot_npu_infer.ros import detection_msgs
from hobot_npu_infer.ros.param_specs import (
    boolean,
    Changes,
    current_values,
    declare,
    each_one_of,
    explain_unknown,
    first_problem,
    integer,
    integers,
    InvalidParameter,
    key_values,
    number,
    one_of,
    ParamSpec,
    size_text,
    string,
    strings,
)
from hobot_npu_infer.ros.qos import RELIABILITY
from hobot_npu_infer.ros.serialized_images import HBM_MESSAGES
from rclpy.node import Node
from rclpy.parameter import Parameter

PARAMETERS = [
    strings('inputs', ['image_raw'], 'sensor_msgs/Image topics to run the model on'),
    strings('compressed_inputs', [], 'sensor_msgs/CompressedImage topics (jpeg, png)'),
    strings('hbmem_inputs', [], 'TROS hbm_img_msgs topics, frames in shared memory (e.g. '
            '/hbmem_img from mipi_cam); needs the hbm_img_msgs package (TROS boards)'),
    string('hbmem_message', 'HbmMsg1080P', 'the hbm_img_msgs type of hbmem_inputs (mipi_cam '
           'and hobot_codec publish HbmMsg1080P, whatever the frame size)',
           check=one_of(HBM_MESSAGES)),
    strings('hbmem_frame_ids', ['default_cam'], 'frame_id per hbmem input, or one for all '
            '(the message has no header)'),
    strings('output_topics', [], 'detections topic per input, in the order of inputs, '
            'compressed_inputs, hbmem_inputs (default: <resolved input topic>/detections)'),
    strings('qos_reliability', ['best_effort'], 'per input, or one for all: best_effort or '
            'reliable', check=each_one_of(tuple(RELIABILITY))),
    integers('qos_depth', [1], 'per input, or one for all: subscription queue depth', 1, 100),
    string('model', 'centerface', 'built-in model name or model file'),
    string('model_name', '', 'one model of a multi-model file'),
    string('backend', 'onnxruntime', "inference backend; auto: the board's NPU (hobot, rknn), "
           'else onnxruntime', check=lambda v: None if v in backend_names() + [AUTO]
           else f'available: {", ".join(backend_names() + [AUTO])}'),
    strings('backend_options', [], 'backend options as key=value, e.g. rknn.core_mask=auto; a '
            '"backend." prefix applies one to that backend only', check=key_values),
    string('decoder', '', 'output decoder of a model file: ' + ', '.join(decoder_names())),
    strings('decoder_options', [], 'decoder options as key=value, e.g. num_classes=80',
            check=key_values),
    string('labels_file', '', 'class names, one per line'),
    strings('class_names', [], 'class names, when no labels file is given'),
    string('input_size', '', "model input WxH, e.g. 640x480 (empty: the model's own or the "
           "image's)", check=size_text),
    number('preprocess.scale', 0.0, "(pixel * scale - mean) / std: the scale (0: the model's "
           'own, e.g. 1/255 for YOLO)', 0.0, 1e6),
    ParamSpec('preprocess.mean', [], "mean per channel after scaling (empty: the model's own)",
              Parameter.Type.DOUBLE_ARRAY, True, None,
              lambda v: None if len(v) in (0, 3) else 'needs three values, or none'),
    ParamSpec('preprocess.std', [], "std per channel after scaling (empty: the model's own)",
              Parameter.Type.DOUBLE_ARRAY, True, None,
              lambda v: None if not v or (len(v) == 3 and all(x != 0 for x in v))
              else 'needs three non-zero values, or none'),
    string('preprocess.channel_order', '', "rgb or bgr (empty: the model's own)",
           check=one_of(('',) + CHANNEL_ORDERS)),
    string('preprocess.resize', '', "letterbox or stretch (empty: the model's own)",
           check=one_of(('',) + RESIZE_MODES)),
    integer('preprocess.pad_value', -1, "letterbox padding 0..255 (-1: the model's own, 114 for "
            'YOLO)', -1, 255),
    integer('threads', 0, 'inference threads per runtime (0: one per core)', 0, 64),
    integer('max_batch_size', 0, 'frames of distinct inputs run together (0: one per input; '
            'a fixed-batch model uses its own size and pads)', 0, 64),
    number('max_batch_delay_ms', 10.0, 'longest wait of the oldest frame for a batch to fill',
           0.0, 1000.0),
    integer('num_runtimes', 0, 'engine instances running batches concurrently (0: the '
            "backend's choice, one per NPU core on RK3588/RK3576, else 1)", 0, 16),
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
    number('score_threshold', 0.0, "minimum detection score (0: the model's own: 0.25 for "
           'Ultralytics exports, 0.5 for CenterFace)', 0.0, 1.0, read_only=False),
    string('detections_format', 'auto', 'vision_msgs, json, or perception_targets (ai_msgs '
           'beside the detections, on <input>/perception_targets); auto: vision_msgs if '
           'installed, else json, with perception_targets when ai_msgs is installed',
           check=one_of(detection_msgs.FORMATS)),
    boolean('publish_debug_image', False,
            'publish <input>/debug_image with the results drawn (boxes, masks, keypoints)'),
    boolean('publish_markers', True, 'publish <input>/markers (visualization_msgs/MarkerArray: '
            'boxes, IDs, keypoints) for RViz and Foxglove, built only while subscribed'),
    number('markers_pixel_size', 0.001, 'metres per image pixel of the markers, drawn in the '
           "image's frame_id on z = 0 (x right, y down)", 1e-6, 1000.0),
    string('tracker', 'bytetrack', "multi-object tracker on each input's detections (track "
           'IDs): bytetrack or none', check=one_of(TRACKERS)),
    number('track_high_threshold', 0.0, "ByteTrack's first-stage score (0: score_threshold)",
           0.0, 1.0),
    number('track_low_threshold', 0.1, 'boxes from this score up may continue a track (the '
           'second stage); the model is decoded down to it', 0.0, 1.0),
    number('track_new_threshold', 0.0, 'least score that starts a track (0: '
           "track_high_threshold + 0.1, as ByteTrack's det_thresh)", 0.0, 1.0),
    number('track_match_iou', 0.1, "least IoU of a track's predicted box and its detection",
           0.0, 1.0),
    number('track_buffer_s', 1.0, 'seconds a lost track keeps its ID for the object to return',
           0.0, 3600.0),
    integer('track_min_hits', 2, 'detector runs in a row before a new track gets an ID', 1,
            1000),
    boolean('track_per_class', True, 'a tracker per class (false: one for all classes, for '
            'a model whose classes are states of one object; with decoder_options '
            'agnostic_nms=true)'),
    boolean('shadow_tracking', True, "on frames a detection head skips, publish the tracker's "
            'predicted boxes (marked as predicted)'),
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
    integer('max_input_pixels', 4096 * 2160, 'largest frame taken, width x height (default '
            'DCI 4K); larger ones are refused from their header or JPEG/PNG header, before '
            'any decoding', 1, 1 << 31, read_only=False),
    integer('max_compressed_bytes', 32 << 20, 'largest compressed frame taken, in bytes',
            1, 1 << 31, read_only=False),
    number('stamp_tolerance_s', 1.0, 'a header stamp later than now by more than this, or '
           'older than stats_window_s, is counted as clock_skew and kept out of the latency '
           'statistics', 0.0, 3600.0, read_only=False),
    number('model_check_period_s', 5.0, "how often the model file's size, time and content "
           'hash are checked (0: never)', 0.0, 3600.0),
    boolean('reload_on_change', False, 'load a changed model file in the background and swap '
            'it in between batches once it has loaded and warmed up'),
]


def head_parameters(name: str) -> list:
    """Return the parameters of one head of a packed model, under ``heads.<name>.``."""
    prefix = f'heads.{name}.'
    return [
        strings(prefix + 'outputs', [], 'outputs of the model file this head computes (split)'),
        string(prefix + 'file', '', "this head's own model file (a pack)"),
        string(prefix + 'model_name', '', 'one model of a packed file'),
        string(prefix + 'decoder', '', 'decoder of its outputs (empty: publish raw tensors)'),
        strings(prefix + 'class_names', [], 'class names of its detections'),
        number(prefix + 'rate_hz', 0.0, 'runs per second (0: every frame, or every_n_frames)',
               0.0, 1000.0, read_only=False),
        integer(prefix + 'every_n_frames', 0, 'run on every n-th frame instead of a rate',
                0, 100000, read_only=False),
        boolean(prefix + 'enabled', True, 'a disabled head costs nothing', read_only=False),
    ]


RATE_FIELDS = ('rate_hz', 'every_n_frames')


def head_field(name: str) -> Optional[Tuple[str, str]]:
    """Split ``heads.a.rate_hz`` into ``('a', 'rate_hz')``; None for a parameter of no head."""
    if not name.startswith('heads.') or name.count('.') < 2:
        return None
    head, field = name[len('heads.'):].rsplit('.', 1)
    return head, field


class InferParameters:
    """
    The parameters of one infer node, declared from the table, read, and checked on change.

    ``managed`` (the lifecycle node): the parameters infer_node fixes at start-up stay
    writable, and a change to one is refused only while a model is loaded.
    """

    def __init__(self, node: Node, managed: bool):
        self.node = node
        self.managed = managed
        self.specs: Dict[str, ParamSpec] = {}
        self._load_time: Set[str] = set()  # parameters read only when loading
        self._declare(PARAMETERS)
        explain_unknown(node, self.unknown_head)

    def _declare(self, specs: List[ParamSpec]) -> List[ParamSpec]:
        """Declare ``specs`` as this node has them; return them as declared."""
        if self.managed:
            self._load_time |= {s.name for s in specs if s.read_only}
            specs = [dataclasses.replace(s, read_only=False) for s in specs]
        undeclared = [spec for spec in specs if not self.node.has_parameter(spec.name)]
        self.specs.update({spec.name: spec for spec in specs})
        declare(self.node, undeclared)
        return specs

    def unknown_head(self, name: str) -> Optional[str]:
        """
        Return why ``heads.<head>.<field>``, not declared, cannot be set; None for other names.

        The head is not in ``head_names``; or it is, but the managed node declares a head's
        parameters when it configures. A field no head has is left to the node's answer (no
        such parameter, and the closest name).
        """
        field = head_field(name)
        if field is None:
            return None
        head, field_name = field
        heads = list(self.node.get_parameter('head_names').value) \
            if self.node.has_parameter('head_names') else []
        if head not in heads:
            known = f'heads are {", ".join(heads)}' if heads \
                else 'this node has no heads (head_names is empty)'
            return f"no head named '{head}'; {known}"
        if name in {spec.name for spec in head_parameters(head)}:
            return (f'the parameters of head {head} are declared when the node is configured: '
                    f'configure it first, or give this one at start-up (-p or a parameters '
                    f'file)')
        return None

    def values(self) -> Dict[str, Any]:
        """Return the current value of every declared parameter."""
        return current_values(self.node, list(self.specs.values()))

    def head(self, name: str) -> HeadConfig:
        """
        Return the configuration of head ``name``.

        Its parameters are declared the first time it is named.
        """
        specs = self._declare(head_parameters(name))
        given = current_values(self.node, specs)
        reason = first_problem(self.specs, given)  # values set while unconfigured
        if reason:
            raise InvalidParameter(reason)
        v = {k[len(f'heads.{name}.'):]: value for k, value in given.items()}
        return HeadConfig(name, v['outputs'], v['file'], v['model_name'], v['decoder'],
                          v['class_names'], HeadRate(name, v['rate_hz'], v['every_n_frames'],
                                                     v['enabled']))

    def preprocess(self, values: Dict[str, Any]) -> Dict[str, Any]:
        """Return the pre-processing fields given (the rest are the model's own)."""
        given = {'scale': values['preprocess.scale'] or None,
                 'mean': tuple(values['preprocess.mean']) or None,
                 'std': tuple(values['preprocess.std']) or None,
                 'channel_order': values['preprocess.channel_order'] or None,
                 'resize': values['preprocess.resize'] or None,
                 'pad_value': None if values['preprocess.pad_value'] < 0
                 else values['preprocess.pad_value']}
        return {key: value for key, value in given.items() if value is not None}

    def value_after(self, changes: Changes, name: str, default: Any = 0) -> Any:
        """Return what parameter ``name`` holds once ``changes`` apply."""
        if name in changes:
            return changes[name]
        if self.node.has_parameter(name):
            return self.node.get_parameter(name).value
        return default

    def rate_after(self, changes: Changes, head: str) -> Tuple[float, int]:
        """Return ``(rate_hz, every_n_frames)`` of ``head`` once ``changes`` apply."""
        return (self.value_after(changes, f'heads.{head}.rate_hz'),
                self.value_after(changes, f'heads.{head}.every_n_frames'))

    def check(self, changes: Changes, loaded: bool) -> Optional[str]:
        """
        Return why a set request is refused, or None.

        Every value is checked before any applies, so a refused request changes nothing.
        """
        reason = first_problem(self.specs, changes)
        if reason:
            return reason
        fixed = sorted(set(changes) & self._load_time) if loaded else []
        if fixed:
            return (f'{fixed[0]}: read when configuring: change it while unconfigured '
                    f'(cleanup first)')
        for head in {field[0] for field in map(head_field, changes)
                     if field is not None and field[1] in RATE_FIELDS}:
            rate, every = self.rate_after(changes, head)
            if rate and every:
                return (f'heads.{head}.rate_hz={rate} and heads.{head}.every_n_frames={every}: '
                        f'a head runs at a rate or every n-th frame, not both; set the other '
                        f'to 0 in the same request')
        return None
