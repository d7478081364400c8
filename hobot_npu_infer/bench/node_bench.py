"""
Node against raw backend, in one run: ``python -m hobot_npu_infer.bench.batch_bench --node``.

raw: the backend alone on a prepared tensor, one run after another (latency and fps).
node: image_source -> infer_node -> a subscriber, across three processes and DDS. Latency is
measured with the camera at half the raw fps (arrival at the subscriber minus the camera's
stamp); fps with the camera at 1.25x the raw fps (saturation: detections per second out).
Raw and node phases alternate over several rounds and are pooled, so slow drifts of a shared
machine's speed hit both sides alike.
"""

import os
import time
from typing import Dict, List

from hobot_npu_infer.core.errors import InferError
from hobot_npu_infer.core.imaging.sample_images import load_image_or_sample
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline
from hobot_npu_infer.core.telemetry.health_reports import STAGES
from hobot_npu_infer.core.telemetry.rolling_stats import summarize
from hobot_npu_infer.ros.diagnostics import snapshot_of

ROUNDS = 3


def raw_runs(pipeline: DetectionPipeline, prepared, seconds: float) -> List[float]:
    for _ in range(3):
        pipeline.infer(prepared)
    times: List[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 20 or time.perf_counter() < deadline:
        start = time.perf_counter()
        pipeline.infer(prepared)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def latency_row(times_ms: List[float], fps: float = 0.0) -> Dict[str, float]:
    s = summarize(times_ms)
    return {'latency_ms_p50': round(s.p50, 2), 'latency_ms_p99': round(s.p99, 2),
            'fps': round(fps or 1e3 / s.mean, 2)}


class CameraPhase:
    """image_source streaming at ``rate`` for the duration of a ``with`` block."""

    def __init__(self, topic: str, image: str, size: str, rate: float, log: str):
        from hobot_npu_infer.harness.processes import RosProcess
        self.camera = RosProcess('image_source', {'images': [image], 'topics': [topic],
                                                  'rate_hz': rate, 'size': size}, log_path=log)

    def __enter__(self) -> 'CameraPhase':
        return self

    def __exit__(self, *exc) -> None:
        self.camera.stop()


def measure_window(listener, topic: str, seconds: float, what: str, logs: str):
    """Messages of ``topic`` that arrive during ``seconds`` after they started flowing."""
    if not listener.wait_for(lambda: len(listener.received(topic)) > 0, timeout=60):
        raise InferError(f'nothing arrived on {topic} while measuring {what}; see {logs}')
    time.sleep(1.0)  # let queues settle
    start = time.time()
    time.sleep(seconds)
    end = time.time()
    return [(t, m) for t, m in listener.received_with_times(topic) if start <= t < end], \
        end - start


def stage_p50s(arrays, topic: str) -> Dict[str, float]:
    """p50 of each stage from the node's newest diagnostics of ``topic``."""
    row = snapshot_of(arrays).input_rows().get(topic)
    return {} if row is None else {stage: row.latency_ms[stage]['p50'] for stage in STAGES}


def node_benchmark(args, pipeline: DetectionPipeline) -> Dict[str, Dict[str, float]]:
    from hobot_npu_infer.harness.ros_env import loopback_environment
    loopback_environment()
    import cv2
    from diagnostic_msgs.msg import DiagnosticArray
    from hobot_npu_infer.harness.listener import Listener
    from hobot_npu_infer.harness.processes import RosProcess
    from hobot_npu_infer.ros import detection_msgs

    w, h = args.input_size
    size = f'{w}x{h}'
    prepared = pipeline.prepare([cv2.resize(load_image_or_sample(args.image), (w, h))])
    logs = os.path.join('out', 'bench-node')
    os.makedirs(logs, exist_ok=True)
    phase_s = args.seconds / ROUNDS
    raw_times = raw_runs(pipeline, prepared, phase_s)
    raw_fps = 1e3 / summarize(raw_times).mean
    latency_rate = max(1.0, raw_fps / 2)
    saturating_rate = min(200.0, raw_fps * 1.25)
    fmt = detection_msgs.resolve_format('auto')
    topic = '/bench/image_raw'
    output = f'{topic}/detections'
    listener = Listener('bench_listener')
    listener.subscribe(detection_msgs.message_type(fmt), output, qos=100)
    listener.subscribe(DiagnosticArray, '/diagnostics', keep=3)
    node = RosProcess('infer_node', {'inputs': [topic], 'input_size': size,
                                     'model': args.model, 'threads': args.threads},
                      log_path=os.path.join(logs, 'infer_node.log'))
    ages: List[float] = []
    delivered, span = 0, 0.0
    try:
        for round_ in range(ROUNDS):
            if round_:
                raw_times += raw_runs(pipeline, prepared, phase_s)
            with CameraPhase(topic, args.image, size, latency_rate,
                             os.path.join(logs, 'camera-latency.log')):
                records, _ = measure_window(listener, output, phase_s, 'node latency', logs)
                latency_stages = stage_p50s(listener.received('/diagnostics'), topic)
            ages += [(t - sec - nsec * 1e-9) * 1e3 for t, m in records
                     for sec, nsec in [detection_msgs.stamp_of(m)]]
            with CameraPhase(topic, args.image, size, saturating_rate,
                             os.path.join(logs, 'camera-saturation.log')):
                saturated, seconds = measure_window(listener, output, phase_s, 'node fps', logs)
                stages = stage_p50s(listener.received('/diagnostics'), topic)
            delivered, span = delivered + len(saturated), span + seconds
    finally:
        node.stop()
        listener.close()
    result = {'raw': latency_row(raw_times),
              'node': latency_row(ages, delivered / span),
              'node_stage_p50_ms': {'latency_phase': latency_stages, 'saturation': stages},
              'settings': {'model': args.model, 'input_size': size, 'threads': args.threads,
                           'rounds': ROUNDS, 'latency_camera_hz': round(latency_rate, 2),
                           'saturation_camera_hz': round(saturating_rate, 2),
                           'detections_format': fmt}}
    node_row, raw_row = result['node'], result['raw']
    result['node_vs_raw'] = {
        'latency_p50_added_ms': round(node_row['latency_ms_p50'] - raw_row['latency_ms_p50'], 2),
        'fps_ratio': round(node_row['fps'] / raw_row['fps'], 3)}
    return result


def multi_source_benchmark(args) -> Dict[str, object]:
    """
    Benchmark ``--sources`` cameras at ``--rate`` into one node, unbatched against batched.

    The node runs unbatched (max_batch_size 1) and batched (one frame per camera) in alternating
    rounds; throughput counts detection messages of all cameras, latency is arrival minus the
    camera's stamp.
    """
    from hobot_npu_infer.harness.ros_env import loopback_environment
    loopback_environment()
    from hobot_npu_infer.core.imaging.sample_images import SAMPLE_NAMES
    from hobot_npu_infer.harness.listener import Listener
    from hobot_npu_infer.harness.processes import RosProcess
    from hobot_npu_infer.ros import detection_msgs

    w, h = args.input_size
    topics = [f'/bench/cam{i}/image_raw' for i in range(args.sources)]
    outputs = [f'{t}/detections' for t in topics]
    images = [SAMPLE_NAMES[i % len(SAMPLE_NAMES)] for i in range(args.sources)]
    logs = os.path.join('out', 'bench-node')
    os.makedirs(logs, exist_ok=True)
    fmt = detection_msgs.resolve_format('auto')
    listener = Listener('bench_listener')
    for output in outputs:
        listener.subscribe(detection_msgs.message_type(fmt), output, qos=100)
    modes = {'unbatched': 1, 'batched': args.sources}
    measured = {mode: {'ages': [], 'messages': 0, 'seconds': 0.0} for mode in modes}
    camera = RosProcess('image_source', {'images': images, 'topics': topics,
                                         'rate_hz': args.rate, 'size': f'{w}x{h}'},
                        log_path=os.path.join(logs, 'cameras.log'))
    phase_s = args.seconds / ROUNDS
    try:
        for _ in range(ROUNDS):
            for mode, batch in modes.items():
                node = RosProcess('infer_node', {
                    'inputs': topics, 'input_size': f'{w}x{h}', 'model': args.model,
                    'threads': args.threads, 'max_batch_size': batch,
                    'max_batch_delay_ms': 1e3 / args.rate / 2},
                    log_path=os.path.join(logs, f'infer_node-{mode}.log'))
                try:
                    counts = [len(listener.received(o)) for o in outputs]
                    if not listener.wait_for(lambda: all(len(listener.received(o)) > c for
                                                         o, c in zip(outputs, counts)), 60):
                        raise InferError(f'no detections from the {mode} node; see {logs}')
                    time.sleep(1.0)
                    start = time.time()
                    time.sleep(phase_s)
                    end = time.time()
                finally:
                    node.stop()
                for output in outputs:
                    records = [(t, m) for t, m in listener.received_with_times(output)
                               if start <= t < end]
                    measured[mode]['messages'] += len(records)
                    measured[mode]['ages'] += [(t - sec - nsec * 1e-9) * 1e3 for t, m in records
                                               for sec, nsec in [detection_msgs.stamp_of(m)]]
                measured[mode]['seconds'] += end - start
    finally:
        camera.stop()
        listener.close()
    result = {'settings': {'model': args.model, 'input_size': f'{w}x{h}',
                           'sources': args.sources, 'rate_hz': args.rate,
                           'offered_fps': args.sources * args.rate, 'rounds': ROUNDS,
                           'max_batch_delay_ms': round(1e3 / args.rate / 2, 1)}}
    for mode, data in measured.items():
        row = latency_row(data['ages'], data['messages'] / data['seconds'])
        row['max_batch_size'] = modes[mode]
        result[mode] = row
    return result


def format_node_table(result) -> str:
    if 'batched' in result:
        header = [' | max_batch_size | fps (all cameras) | latency_ms_p50 | latency_ms_p99',
                  '--- | --- | --- | --- | ---']
        return '\n'.join(header + [
            f'{mode} | {result[mode]["max_batch_size"]} | {result[mode]["fps"]} | '
            f'{result[mode]["latency_ms_p50"]} | {result[mode]["latency_ms_p99"]}'
            for mode in ('unbatched', 'batched')])
    raw, node = result['raw'], result['node']
    ratios = result['node_vs_raw']
    return '\n'.join([
        ' | latency_ms_p50 | latency_ms_p99 | fps',
        '--- | --- | --- | ---',
        f'raw backend | {raw["latency_ms_p50"]} | {raw["latency_ms_p99"]} | {raw["fps"]}',
        f'node (camera -> detections) | {node["latency_ms_p50"]} | {node["latency_ms_p99"]} | '
        f'{node["fps"]}',
        f'node - raw: p50 {ratios["latency_p50_added_ms"]:+} ms; fps ratio '
        f'{ratios["fps_ratio"]}'])
