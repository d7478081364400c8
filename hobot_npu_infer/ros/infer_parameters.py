"""
infer_node's parameters, in one table that both infer nodes declare.

Each entry gives the type, default, description, range and whether it may change at runtime;
``head_parameters`` gives the parameters of one head of a packed model, declared once its name
appears in ``head_names``.
"""

from hobot_npu_infer.core.backends import backend_names
from hobot_npu_infer.core.backends.selection import AUTO
from hobot_npu_infer.core.decoders import decoder_names
from hobot_npu_infer.ros import detection_msgs
from hobot_npu_infer.ros.param_specs import (
    boolean,
    each_one_of,
    integer,
    integers,
    key_values,
    number,
    one_of,
    ParamSpec,
    size_text,
    string,
    strings,
)
from hobot_npu_infer.ros.qos import RELIABILITY
from rclpy.parameter import Parameter

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
