"""
Overload soak: ``python -m hobot_npu_infer.bench.soak_bench [--minutes 10] [--sources 4]``.

Cameras run at ``--overload`` times what the model can process (measured first, on the raw
backend), into one infer_node, for ``--minutes``. Every ``--interval`` seconds it records the
node's resident memory, the p99 age of its outputs (arrival at a subscriber minus the camera's
stamp) over the interval, and the frames dropped as stale. Output age must stay bounded (about
one inference plus one batch delay) and memory flat: the report gives RSS at the start (after
a warm-up interval) and at the end, and the growth.
"""

import os
import time
from typing import Dict, List, Optional

from hobot_npu_infer.core.errors import ConfigError, InferError
from hobot_npu_infer.core.telemetry.rolling_stats import process_rss_mb, summarize
from hobot_npu_infer.ros.diagnostics import snapshot_of
from hobot_npu_infer.tools.cli import command_parser, console_script, write_json


def dropped(arrays, topics: List[str]) -> int:
    """Frames dropped as stale, summed over the inputs, from the newest diagnostics."""
    inputs = snapshot_of(arrays).input_rows()
    return sum(getattr(inputs.get(topic), 'dropped_stale', None) or 0 for topic in topics)


def soak(args) -> Dict[str, object]:
    from hobot_npu_infer.harness.ros_env import loopback_environment
    loopback_environment()
    import cv2
    from diagnostic_msgs.msg import DiagnosticArray
    from hobot_npu_infer.core.imaging.sample_images import load_sample, SAMPLE_NAMES
    from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, PipelineConfig
    from hobot_npu_infer.harness.listener import Listener
    from hobot_npu_infer.harness.processes import RosProcess
    from hobot_npu_infer.ros import detection_msgs

    size = (320, 256)
    pipeline = DetectionPipeline.from_config(PipelineConfig(input_size=size))
    prepared = pipeline.prepare([cv2.resize(load_sample('astronaut'), size)])
    start = time.perf_counter()
    runs = 0
    while time.perf_counter() - start < 3.0:
        pipeline.infer(prepared)
        runs += 1
    capacity = runs / (time.perf_counter() - start)
    rate = args.overload * capacity / args.sources
    topics = [f'/soak/cam{i}/image_raw' for i in range(args.sources)]
    outputs = [f'{t}/detections' for t in topics]
    fmt = detection_msgs.resolve_format('auto')
    logs = os.path.join('out', 'soak')
    os.makedirs(logs, exist_ok=True)
    listener = Listener('soak_listener')
    for output in outputs:
        listener.subscribe(detection_msgs.message_type(fmt), output, qos=100, keep=5000)
    listener.subscribe(DiagnosticArray, '/diagnostics', keep=3)
    node = RosProcess('infer_node', {'inputs': topics, 'input_size': f'{size[0]}x{size[1]}'},
                      log_path=os.path.join(logs, 'infer_node.log'))
    camera = RosProcess('image_source', {
        'images': [SAMPLE_NAMES[i % len(SAMPLE_NAMES)] for i in range(args.sources)],
        'topics': topics, 'rate_hz': rate, 'size': f'{size[0]}x{size[1]}'},
        log_path=os.path.join(logs, 'image_source.log'))
    intervals = []
    try:
        if not listener.wait_for(lambda: all(listener.received(o) for o in outputs), 60):
            raise InferError(f'no detections from the soak node; see {logs}')
        end = time.time() + args.minutes * 60
        seen = time.time()
        while time.time() < end:
            time.sleep(min(args.interval, max(0.0, end - time.time())))
            now = time.time()
            ages = []
            for output in outputs:
                for arrived, msg in listener.received_with_times(output):
                    if seen <= arrived < now:
                        sec, nsec = detection_msgs.stamp_of(msg)
                        ages.append((arrived - sec - nsec * 1e-9) * 1e3)
            age = summarize(ages)
            intervals.append({'t_s': round(now - (end - args.minutes * 60), 1),
                              'rss_mb': round(process_rss_mb(node.proc.pid), 1),
                              'outputs_per_s': round(len(ages) / (now - seen), 2),
                              'age_ms_p50': round(age.p50, 1), 'age_ms_p99': round(age.p99, 1),
                              'dropped_stale': dropped(listener.received('/diagnostics'),
                                                       topics)})
            print(' | '.join(str(v) for v in intervals[-1].values()), flush=True)
            seen = now
    finally:
        camera.stop()
        code = node.stop()
        listener.close()
    if len(intervals) < 2:
        raise InferError('the soak needs at least two intervals: raise --minutes')
    start_rss, end_rss = intervals[0]['rss_mb'], intervals[-1]['rss_mb']
    return {'settings': {'sources': args.sources, 'camera_hz_each': round(rate, 2),
                         'model_capacity_fps': round(capacity, 1), 'overload': args.overload,
                         'minutes': args.minutes, 'input_size': f'{size[0]}x{size[1]}'},
            'rss_mb_start': start_rss, 'rss_mb_end': end_rss,
            'rss_growth_pct': round((end_rss / start_rss - 1) * 100, 2),
            'age_ms_p99_max': max(i['age_ms_p99'] for i in intervals),
            'dropped_stale_total': intervals[-1]['dropped_stale'],
            'node_exit_code': code, 'intervals': intervals}


def main(argv: Optional[List[str]] = None) -> int:
    parser = command_parser('hobot_npu_infer.bench.soak_bench', __doc__)
    parser.add_argument('--minutes', type=float, default=10.0)
    parser.add_argument('--sources', type=int, default=4)
    parser.add_argument('--overload', type=float, default=3.0,
                        help="camera load as a multiple of the model's capacity (3)")
    parser.add_argument('--interval', type=float, default=30.0, help='seconds per sample (30)')
    parser.add_argument('--json', metavar='OUT', default='')
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.sources < 1 or args.overload <= 0 or args.interval <= 0:
        raise ConfigError('--minutes, --sources, --overload and --interval must be positive')
    print('t_s | rss_mb | outputs_per_s | age_ms_p50 | age_ms_p99 | dropped_stale', flush=True)
    result = soak(args)
    print(f'RSS {result["rss_mb_start"]} -> {result["rss_mb_end"]} MB '
          f'({result["rss_growth_pct"]:+} %), output age p99 at most '
          f'{result["age_ms_p99_max"]} ms, {result["dropped_stale_total"]} frames dropped as '
          f'stale; node exit code {result["node_exit_code"]}')
    write_json(args.json, result)
    return 0


cli = console_script(main)


if __name__ == '__main__':
    cli()
