"""
Overload soak: ``python -m hobot_npu_infer.bench.soak_bench [--minutes 10] [--sources 4]``.

Cameras run at ``--overload`` times what the model can process (measured first, on the raw
backend), into one infer_node, for ``--minutes``. Every ``--interval`` seconds it records the
node's resident memory, the p99 age of its outputs (arrival at a subscriber minus the camera's
stamp) over the interval, and the frames dropped as stale. Output age must stay bounded (about
one inference plus one batch delay) and memory flat: the report gives RSS at the start (after
a warm-up interval) and at the end, and the growth.

``--hostile`` adds two hostile inputs beside the cameras, fed by a process of its own: 8K raw
frames at 12 Hz, 8000x8000 JPEGs and decompression bombs (see harness/hostile_camera.py). The
node must refuse them at no cost to the cameras: the report adds the cameras' output rate and
age in one interval measured before the hostile process starts, as the baseline, and the
frames refused per interval.
"""

import os
import time
from typing import Dict, List, Optional

from hobot_npu_infer.core.errors import ConfigError, InferError
from hobot_npu_infer.core.telemetry.rolling_stats import process_cpu_s, process_rss_mb, summarize
from hobot_npu_infer.ros.diagnostics import snapshot_of
from hobot_npu_infer.tools.cli import command_parser, console_script, write_json


HOSTILE_RAW, HOSTILE_JPEG = '/soak/hostile/image_raw', '/soak/hostile_jpeg/image_raw'


def dropped(arrays, topics: List[str]) -> int:
    """Frames dropped as stale, summed over the inputs, from the newest diagnostics."""
    inputs = snapshot_of(arrays).input_rows()
    return sum(getattr(inputs.get(topic), 'dropped_stale', None) or 0 for topic in topics)


def refused(arrays, topics: List[str]) -> int:
    """Frames refused as too large, summed over the inputs, from the newest diagnostics."""
    total = 0
    for array in arrays[-1:]:
        for status in array.status:
            if any(status.name.endswith(f'input {topic}') for topic in topics):
                total += int({kv.key: kv.value for kv in status.values}.get(
                    'conversion_errors.too_large', 0))
    return total


def soak(args) -> Dict[str, object]:
    from hobot_npu_infer.harness.ros_env import loopback_environment
    loopback_environment()
    import cv2
    from diagnostic_msgs.msg import DiagnosticArray
    from hobot_npu_infer.core.imaging.sample_images import load_sample, SAMPLE_NAMES
    from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, PipelineConfig
    from hobot_npu_infer.harness.hostile_camera import HostileProcess
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
    params = {'inputs': topics, 'input_size': f'{size[0]}x{size[1]}'}
    if args.hostile:
        params.update({'inputs': topics + [HOSTILE_RAW], 'compressed_inputs': [HOSTILE_JPEG],
                       'qos_reliability': ['best_effort']})
    node = RosProcess('infer_node', params, log_path=os.path.join(logs, 'infer_node.log'))
    camera = RosProcess('image_source', {
        'images': [SAMPLE_NAMES[i % len(SAMPLE_NAMES)] for i in range(args.sources)],
        'topics': topics, 'rate_hz': rate, 'size': f'{size[0]}x{size[1]}'},
        log_path=os.path.join(logs, 'image_source.log'))
    intervals = []
    baseline = hostile = None
    hostile_out = ''

    def measure(since: float, until: float) -> Dict[str, float]:
        ages = detection_msgs.ages_ms(
            r for output in outputs for r in listener.received_between(output, since, until))
        age = summarize(ages)
        return {'outputs_per_s': round(len(ages) / (until - since), 2),
                'age_ms_p50': round(age.p50, 1), 'age_ms_p99': round(age.p99, 1)}
    try:
        if not listener.wait_for(lambda: all(listener.received(o) for o in outputs), 60):
            raise InferError(f'no detections from the soak node; see {logs}')
        if args.hostile:
            since = time.time()
            time.sleep(args.interval)
            baseline = measure(since, time.time())
            print(f'baseline without the hostile inputs: {baseline}', flush=True)
            hostile = HostileProcess({'8k_raw': HOSTILE_RAW, 'jpeg_8000': HOSTILE_JPEG,
                                      'jpeg_bomb': HOSTILE_JPEG})
        end = time.time() + args.minutes * 60
        seen = time.time()
        cpu = {'node': process_cpu_s(node.proc.pid)}
        if hostile is not None:
            cpu['hostile'] = process_cpu_s(hostile.proc.pid)
        while time.time() < end:
            time.sleep(min(args.interval, max(0.0, end - time.time())))
            now = time.time()
            diagnostics = listener.received('/diagnostics')
            intervals.append({'t_s': round(now - (end - args.minutes * 60), 1),
                              'rss_mb': round(process_rss_mb(node.proc.pid), 1),
                              **measure(seen, now),
                              'dropped_stale': dropped(diagnostics, topics)})
            for name, pid in (('node', node.proc.pid),
                              ('hostile', hostile.proc.pid if hostile else None)):
                if pid is not None:  # cores used over the interval
                    used = process_cpu_s(pid)
                    intervals[-1][f'{name}_cpu_pct'] = round((used - cpu[name]) / (now - seen)
                                                             * 100, 1)
                    cpu[name] = used
            if args.hostile:
                intervals[-1]['refused'] = refused(diagnostics, [HOSTILE_RAW, HOSTILE_JPEG])
            print(' | '.join(str(v) for v in intervals[-1].values()), flush=True)
            seen = now
    finally:
        if hostile is not None:
            _, hostile_out = hostile.stop()
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
            'node_exit_code': code, 'intervals': intervals,
            **({'hostile': {'baseline': baseline, 'published': hostile_out,
                            'refused_total': intervals[-1]['refused'],
                            'outputs_per_s_min_ratio': round(
                                min(i['outputs_per_s'] for i in intervals)
                                / baseline['outputs_per_s'], 3)
                            if baseline['outputs_per_s'] else 0.0}}
               if args.hostile else {})}


def main(argv: Optional[List[str]] = None) -> int:
    parser = command_parser('hobot_npu_infer.bench.soak_bench', __doc__)
    parser.add_argument('--minutes', type=float, default=10.0)
    parser.add_argument('--sources', type=int, default=4)
    parser.add_argument('--overload', type=float, default=3.0,
                        help="camera load as a multiple of the model's capacity (3)")
    parser.add_argument('--interval', type=float, default=30.0, help='seconds per sample (30)')
    parser.add_argument('--hostile', action='store_true',
                        help='add two hostile inputs: 8K raw frames, huge JPEGs, JPEG bombs')
    parser.add_argument('--json', metavar='OUT', default='')
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.sources < 1 or args.overload <= 0 or args.interval <= 0:
        raise ConfigError('--minutes, --sources, --overload and --interval must be positive')
    print('t_s | rss_mb | outputs_per_s | age_ms_p50 | age_ms_p99 | dropped_stale | node_cpu_pct'
          + (' | hostile_cpu_pct | refused' if args.hostile else ''), flush=True)
    result = soak(args)
    print(f'RSS {result["rss_mb_start"]} -> {result["rss_mb_end"]} MB '
          f'({result["rss_growth_pct"]:+} %), output age p99 at most '
          f'{result["age_ms_p99_max"]} ms, {result["dropped_stale_total"]} frames dropped as '
          f'stale; node exit code {result["node_exit_code"]}')
    if args.hostile:
        hostile = result['hostile']
        print(f'hostile inputs: {hostile["refused_total"]} frames refused ({hostile["published"]}'
              f'); camera outputs at least {hostile["outputs_per_s_min_ratio"]:.0%} of the '
              f'baseline {hostile["baseline"]["outputs_per_s"]}/s (age p99 '
              f'{hostile["baseline"]["age_ms_p99"]} ms)')
    write_json(args.json, result)
    return 0


cli = console_script(main)


if __name__ == '__main__':
    cli()
