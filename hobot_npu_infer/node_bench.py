"""Node against raw backend, in one run: ``python -m hobot_npu_infer.bench --node``.

raw: the backend alone on a prepared tensor, one run after another (latency and fps).
node: image_source -> infer_node -> a subscriber, across three processes and DDS. Latency is
measured with the camera below the model's capacity (arrival at the subscriber minus the
camera's stamp); fps with the camera well above it (saturation: detections per second out).
"""

import os
import time
from typing import Dict, List

from .core.errors import InferError
from .core.pipeline import DetectionPipeline
from .core.sample_images import load_image_or_sample
from .core.stats import summarize


def raw_backend(pipeline: DetectionPipeline, image, seconds: float) -> Dict[str, float]:
    prepared = pipeline.prepare([image])
    for _ in range(3):
        pipeline.infer(prepared)
    times: List[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 20 or time.perf_counter() < deadline:
        start = time.perf_counter()
        pipeline.infer(prepared)
        times.append((time.perf_counter() - start) * 1e3)
    s = summarize(times)
    return {'latency_ms_p50': round(s.p50, 2), 'latency_ms_p99': round(s.p99, 2),
            'fps': round(1e3 / s.mean, 2)}


def _camera_phase(listener, topic: str, output: str, image: str, size: str, rate: float,
                  seconds: float, logs: str, name: str):
    from .ros.processes import RosProcess
    camera = RosProcess('image_source', {'images': [image], 'topics': [topic], 'rate_hz': rate,
                                         'size': size},
                        log_path=os.path.join(logs, f'{name}.log'))
    try:
        # warm-up: until detections flow, then a moment more for the queue to settle
        if not listener.wait_for(lambda: len(listener.received(output)) > 0, timeout=60):
            raise InferError(f'no detections during the {name} phase; see {logs}')
        time.sleep(1.0)
        start = time.time()
        time.sleep(seconds)
        end = time.time()
    finally:
        camera.stop()
    return [(t, m) for t, m in listener.received_with_times(output) if start <= t < end], \
        end - start


def node_benchmark(args, pipeline: DetectionPipeline) -> Dict[str, Dict[str, float]]:
    from .ros.ros_env import loopback_environment
    loopback_environment()
    from .ros import detection_msgs
    from .ros.listener import Listener
    from .ros.processes import RosProcess

    w, h = args.input_size
    size = f'{w}x{h}'
    image = load_image_or_sample(args.image)
    import cv2
    raw = raw_backend(pipeline, cv2.resize(image, (w, h)), args.seconds)
    logs = os.path.join('out', 'bench-node')
    os.makedirs(logs, exist_ok=True)
    topic = '/bench/image_raw'
    output = f'{topic}/detections'
    fmt = detection_msgs.resolve_format('auto')
    node = RosProcess('infer_node', {'inputs': [topic], 'input_size': size,
                                     'model': args.model, 'threads': args.threads},
                      log_path=os.path.join(logs, 'infer_node.log'))
    listener = Listener('bench_listener')
    listener.subscribe(detection_msgs.message_type(fmt), output, qos=100)
    try:
        latency_rate = max(1.0, raw['fps'] / 2)
        records, _ = _camera_phase(listener, topic, output, args.image, size, latency_rate,
                                   args.seconds, logs, 'latency')
        ages = [(t - sec - nsec * 1e-9) * 1e3 for t, m in records
                for sec, nsec in [detection_msgs.stamp_of(m)]]
        saturating_rate = min(200.0, raw['fps'] * 2)
        saturated, span = _camera_phase(listener, topic, output, args.image, size,
                                        saturating_rate, args.seconds, logs, 'saturation')
    finally:
        listener.close()
        node.stop()
    lat = summarize(ages)
    result = {'raw': raw,
              'node': {'latency_ms_p50': round(lat.p50, 2), 'latency_ms_p99': round(lat.p99, 2),
                       'fps': round(len(saturated) / span, 2)},
              'settings': {'model': args.model, 'input_size': size,
                           'latency_camera_hz': round(latency_rate, 2),
                           'saturation_camera_hz': round(saturating_rate, 2),
                           'detections_format': fmt}}
    result['node_vs_raw'] = {
        'latency_p50_added_ms': round(lat.p50 - raw['latency_ms_p50'], 2),
        'fps_ratio': round(result['node']['fps'] / raw['fps'], 3)}
    return result


def format_node_table(result) -> str:
    raw, node = result['raw'], result['node']
    return '\n'.join([
        ' | latency_ms_p50 | latency_ms_p99 | fps',
        '--- | --- | --- | ---',
        f'raw backend | {raw["latency_ms_p50"]} | {raw["latency_ms_p99"]} | {raw["fps"]}',
        f'node (camera -> detections) | {node["latency_ms_p50"]} | {node["latency_ms_p99"]} | '
        f'{node["fps"]}',
        f'node - raw: p50 +{result["node_vs_raw"]["latency_p50_added_ms"]} ms, fps ratio '
        f'{result["node_vs_raw"]["fps_ratio"]}'])
