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
from hobot_npu_infer.core.telemetry.rolling_stats import process_cpu_s, summarize
from hobot_npu_infer.core.telemetry.status_names import MODEL, parse_status_name
from hobot_npu_infer.core.telemetry.thread_cpu import thread_table, ThreadCpu
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


def stage_p50s(arrays, topic: str) -> Dict[str, float]:
    """p50 of each stage from the node's newest diagnostics of ``topic``."""
    row = snapshot_of(arrays).input_rows().get(topic)
    return {} if row is None else {stage: row.latency_ms[stage]['p50'] for stage in STAGES}


def stage_cpu_s(arrays) -> Dict[str, float]:
    """Return the node's ``cpu_s.*`` values (its threads' CPU per stage) from diagnostics."""
    for array in reversed(list(arrays)):
        for status in array.status:
            name = parse_status_name(status.name)
            if name is not None and name.kind == MODEL:
                return {kv.key[len('cpu_s.'):]: float(kv.value) for kv in status.values
                        if kv.key.startswith('cpu_s.')}
    return {}


def thread_group(thread: ThreadCpu, pid: int) -> str:
    """Which part of the node a thread is, from the name the node gave it for the OS."""
    if thread.tid == pid:
        return 'executor'
    for prefix, group in THREAD_GROUPS:
        if thread.name.startswith(prefix):
            return group
    return 'other'


# Thread name prefix -> the part of the node it is (thread_cpu names them; DDS names its own).
THREAD_GROUPS = (('take', 'receive'), ('convert', 'convert'), ('prepare', 'preprocess'),
                 ('infer', 'infer_thread'), ('ort', 'backend_pool'), ('dds.', 'dds'))


class CpuWindow:
    """The node process's CPU over a window, per thread group, from /proc (see thread_cpu)."""

    def __init__(self, pid: int, listener):
        self.pid, self.listener = pid, listener
        self.start = self._read()

    def _read(self):
        groups: Dict[str, float] = {}
        for thread in thread_table(str(self.pid)):
            group = thread_group(thread, self.pid)
            groups[group] = groups.get(group, 0.0) + thread.cpu_s
        return (process_cpu_s(self.pid), groups,
                stage_cpu_s(self.listener.received('/diagnostics')))

    def per_frame_ms(self, frames: int) -> Dict[str, float]:
        """
        CPU ms per frame out: the process, the backend's share and the rest, by part.

        The backend's share is its pool threads plus the infer thread's time inside its runs;
        the infer thread's other stages (decode, track, publish) are the node's own counts,
        and what remains of that thread is ``infer_other``.
        """
        total_1, groups_1, stages_1 = self._read()
        total_0, groups_0, stages_0 = self.start
        n = max(1, frames)
        parts = {g: (groups_1.get(g, 0.0) - groups_0.get(g, 0.0)) * 1e3 / n
                 for g in set(groups_0) | set(groups_1)}
        stages = {s: (stages_1.get(s, 0.0) - stages_0.get(s, 0.0)) * 1e3 / n
                  for s in ('inference', 'decode', 'track', 'publish')}
        process = (total_1 - total_0) * 1e3 / n
        caller = stages.pop('inference')  # the infer thread inside the backend's runs
        backend = parts.pop('backend_pool', 0.0) + caller
        parts['infer_other'] = parts.pop('infer_thread', 0.0) - caller - sum(stages.values())
        parts.update(stages)
        parts['other'] = parts.get('other', 0.0) + process - backend - sum(parts.values())
        return {'process': round(process, 2), 'backend': round(backend, 2),
                'outside_backend': round(process - backend, 2),
                **{f'{k}': round(v, 2) for k, v in sorted(parts.items())}}


def node_phase(listener, output: str, camera: CameraPhase, pid: int, seconds: float,
               what: str, logs: str):
    """Measure the node while ``camera`` streams: records, seconds, CPU per frame, stages."""
    with camera:
        if not listener.wait_for(lambda: len(listener.received(output)) > 0, timeout=60):
            raise InferError(f'nothing arrived on {output} while measuring {what}; see {logs}')
        time.sleep(1.0)  # let queues settle
        listener.wait_for(lambda: False, timeout=1.5)  # a fresh diagnostics array
        cpu = CpuWindow(pid, listener)
        start = time.time()
        time.sleep(seconds)
        end = time.time()
        listener.wait_for(lambda: False, timeout=1.5)
        records = listener.received_between(output, start, end)
        return records, end - start, cpu.per_frame_ms(len(records)), \
            stage_p50s(listener.received('/diagnostics'), output.rsplit('/', 1)[0])


def node_benchmark(args, pipeline: DetectionPipeline) -> Dict[str, Dict[str, float]]:
    """
    Measure the node against the raw backend per camera size: latency, fps, CPU per frame.

    Raw runs alternate with node phases; during raw runs a camera process publishes at the
    saturating rate on a topic nobody takes (the CPU it costs is the node's too).
    """
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
    raw_fps = 1e3 / summarize(raw_runs(pipeline, prepared, min(phase_s, 5.0))).mean
    latency_rate = max(1.0, raw_fps / 2)
    saturating_rate = min(200.0, raw_fps * 1.25)
    fmt = detection_msgs.resolve_format('auto')
    topic = '/bench/image_raw'
    output = f'{topic}/detections'
    listener = Listener('bench_listener')
    listener.subscribe(detection_msgs.message_type(fmt), output, qos=100)
    listener.subscribe(DiagnosticArray, '/diagnostics', keep=3)
    node = RosProcess('infer_node', {'inputs': [topic], 'input_size': size,
                                     'model': args.model, 'threads': args.threads,
                                     'diagnostics_period_s': 1.0},
                      log_path=os.path.join(logs, 'infer_node.log'))
    pid = node.proc.pid
    result: Dict[str, object] = {'settings': {
        'model': args.model, 'input_size': size, 'threads': args.threads, 'rounds': ROUNDS,
        'latency_camera_hz': round(latency_rate, 2),
        'saturation_camera_hz': round(saturating_rate, 2), 'detections_format': fmt,
        'camera_sizes': args.camera_sizes}}
    try:
        for camera_size in args.camera_sizes:
            def camera(rate: float, on: str = topic, name: str = 'node') -> CameraPhase:
                return CameraPhase(on, args.image, camera_size, rate,
                                   os.path.join(logs, f'camera-{name}.log'))
            raw_times: List[float] = []
            ages: List[float] = []
            delivered, span = 0, 0.0
            cpu_half: List[Dict[str, float]] = []
            cpu_full: List[Dict[str, float]] = []
            for _ in range(ROUNDS):
                with camera(saturating_rate, '/bench/nobody/image_raw', 'raw'):
                    time.sleep(1.0)
                    raw_times += raw_runs(pipeline, prepared, phase_s)
                records, _, cpu, latency_stages = node_phase(
                    listener, output, camera(latency_rate), pid, phase_s, 'node latency', logs)
                ages += detection_msgs.ages_ms(records)
                cpu_half.append(cpu)
                saturated, seconds, cpu, stages = node_phase(
                    listener, output, camera(saturating_rate), pid, phase_s, 'node fps', logs)
                cpu_full.append(cpu)
                delivered, span = delivered + len(saturated), span + seconds
            raw_row, node_row = latency_row(raw_times), latency_row(ages, delivered / span)
            result[camera_size] = {
                'raw': raw_row, 'node': node_row,
                'node_vs_raw': {
                    'latency_p50_added_ms': round(node_row['latency_ms_p50']
                                                  - raw_row['latency_ms_p50'], 2),
                    'fps_ratio': round(node_row['fps'] / raw_row['fps'], 3)},
                'cpu_ms_per_frame': {'half_load': mean_parts(cpu_half),
                                     'saturation': mean_parts(cpu_full)},
                'node_stage_p50_ms': {'half_load': latency_stages, 'saturation': stages}}
    finally:
        node.stop()
        listener.close()
    return result


def mean_parts(rows: List[Dict[str, float]]) -> Dict[str, float]:
    """Each key's mean over the rounds."""
    keys = sorted({k for row in rows for k in row}, key=lambda k: (k not in HEADLINE, k))
    return {k: round(sum(row.get(k, 0.0) for row in rows) / len(rows), 2) for k in keys}


HEADLINE = ('process', 'backend', 'outside_backend')


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
                    records = listener.received_between(output, start, end)
                    measured[mode]['messages'] += len(records)
                    measured[mode]['ages'] += detection_msgs.ages_ms(records)
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
    lines = [' | latency_ms_p50 | latency_ms_p99 | fps | CPU ms/frame: process | backend '
             '| outside backend',
             '--- | --- | --- | --- | --- | --- | ---']
    for camera_size in result['settings']['camera_sizes']:
        row = result[camera_size]
        raw, node, ratios = row['raw'], row['node'], row['node_vs_raw']
        for load in ('half_load', 'saturation'):
            cpu = row['cpu_ms_per_frame'][load]
            lines.append(f'node {camera_size}, {load.replace("_", " ")} | ' + (
                f'{node["latency_ms_p50"]} | {node["latency_ms_p99"]} | |' if load == 'half_load'
                else f' | | {node["fps"]} |') +
                f' {cpu["process"]} | {cpu["backend"]} | {cpu["outside_backend"]}')
        lines.append(f'raw backend (camera {camera_size} publishing) | {raw["latency_ms_p50"]} | '
                     f'{raw["latency_ms_p99"]} | {raw["fps"]} | | |')
        lines.append(f'node - raw at {camera_size}: p50 {ratios["latency_p50_added_ms"]:+} ms; '
                     f'fps ratio {ratios["fps_ratio"]} | | | | | |')
    return '\n'.join(lines)
