"""
Our infer_node against the Ultralytics peer: ``python -m hobot_npu_infer.bench.peer_bench``.

The peer is what most Python ROS users run instead: Ultralytics' predictor in an rclpy
callback, one node per camera, as yolo_ros does (harness/ultralytics_peer.py, run by the
Ultralytics environment's Python). Both sides run the same ONNX file (default: the real YOLOv8s
fall detector, $HOBOT_NPU_INFER_MODELS/best_fp16.onnx) on the same cameras (one image_source
process, 640x480 bgr8 at a rate above what either side can process) on the same machine, in
alternating rounds (ours, peer, ours, peer, ...) pooled per side, so slow drifts of a shared
machine's speed hit both alike. Scenarios: one camera (one node each), and four cameras: one
peer node per camera against one infer_node subscribed to all four, batching them
(max_batch_size 4). Per side: detection messages out per second, latency p50/p99 (arrival at a
listener minus the image's stamp), CPU ms per frame (CPU time of the side's processes over the
window, divided by the messages out) and resident memory (summed over the side's processes at
the end of a window, the largest of the rounds); and the ratios ours/peer.
"""

import json
import os
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Optional

import hobot_npu_infer
from hobot_npu_infer.bench.batch_bench import parse_counts
from hobot_npu_infer.core.errors import ConfigError, InferError
from hobot_npu_infer.core.telemetry.rolling_stats import process_cpu_s, process_rss_mb, summarize
from hobot_npu_infer.harness.processes import RosProcess
from hobot_npu_infer.harness.ros_env import child_environment, loopback_environment
from hobot_npu_infer.tools.cli import command_parser, console_script, size_argument, write_json

PYTHON_VARIABLE = 'HOBOT_NPU_INFER_ULTRALYTICS_PYTHON'
MODELS_VARIABLE = 'HOBOT_NPU_INFER_MODELS'
SIDES = ('ours', 'peer')
SCENARIOS = {1: 'one_camera', 4: 'four_cameras'}
START_TIMEOUT_S = 120.0  # a side's first detections: the peer imports torch and Ultralytics
SETTLE_S = 2.0  # after the first detections, before the window: warm-up and queues settle
ROW_KEYS = ('processes', 'fps', 'fps_per_camera_min', 'latency_ms_p50', 'latency_ms_p99',
            'cpu_ms_per_frame', 'rss_mb')
RATIO_KEYS = ('fps', 'latency_ms_p50', 'latency_ms_p99', 'cpu_ms_per_frame', 'rss_mb')


def default_model() -> str:
    return os.path.join(os.environ.get(MODELS_VARIABLE) or '.models', 'best_fp16.onnx')


def default_images() -> List[str]:
    """Return the fetched photos of people (``make models``), else sample photos by name."""
    folder = os.environ.get(MODELS_VARIABLE) or '.models'
    photos = [os.path.join(folder, name) for name in ('bus.jpg', 'zidane.jpg')]
    return photos if all(os.path.isfile(p) for p in photos) else ['astronaut', 'camera']


def peer_environment() -> Dict[str, str]:
    """
    Return the loopback environment for the Ultralytics environment's Python.

    Nothing of this venv's: no PYTHONPATH but the folder holding hobot_npu_infer (the peer is
    run with ``-m``), and the ROS wheels' bootstrapper of that venv sets its own library path
    (this venv's bootstrapper marked itself done and set this venv's).
    """
    env = child_environment()
    for variable in ('PYTHONHOME', 'VIRTUAL_ENV', '_ROS_WHEELS_BOOTSTRAP_COMPLETE'):
        env.pop(variable, None)
    ours = os.path.realpath(sys.prefix)
    library_path = [p for p in env.get('LD_LIBRARY_PATH', '').split(os.pathsep)
                    if p and not os.path.realpath(p).startswith(ours)]
    env['LD_LIBRARY_PATH'] = os.pathsep.join(library_path)
    if not library_path:
        del env['LD_LIBRARY_PATH']
    env['PYTHONPATH'] = os.path.dirname(os.path.dirname(os.path.abspath(
        hobot_npu_infer.__file__)))
    return env


class PeerProcess(RosProcess):
    """One peer node, in the Ultralytics environment: stopped and read as a RosProcess."""

    def __init__(self, python: str, model: str, topic: str, name: str, log_path: str,
                 config_dir: str):
        cmd = [python, '-m', 'hobot_npu_infer.harness.ultralytics_peer', '--model', model,
               '--topic', topic, '--ros-args', '-r', f'__node:={name}']
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self._log.write(' '.join(shlex.quote(c) for c in cmd) + '\n')
        self._log.flush()
        env = dict(peer_environment(), YOLO_CONFIG_DIR=config_dir)
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)


def start_side(side: str, topics: List[str], args, logs: str, round_: int) -> List[RosProcess]:
    if side == 'ours':
        return [RosProcess('infer_node', {'inputs': topics, 'model': args.model,
                                          'detections_format': 'json',
                                          'max_batch_size': len(topics)},
                           log_path=os.path.join(logs, f'ours-{len(topics)}-{round_}.log'))]
    return [PeerProcess(args.peer_python, args.model, topic, f'ultralytics_peer_{i}',
                        os.path.join(logs, f'peer-{len(topics)}-{round_}-{i}.log'),
                        os.path.join(logs, 'ultralytics-config'))
            for i, topic in enumerate(topics)]


def measure_side(side: str, topics: List[str], args, listener, logs: str,
                 round_: int) -> Dict[str, object]:
    """Run one side on the cameras' topics; what arrived and what it cost in one window."""
    outputs = [f'{t}/detections' for t in topics]
    started = time.time()
    processes = start_side(side, topics, args, logs, round_)
    codes: List[int] = []
    try:
        def all_answered() -> bool:
            return all(any(t >= started for t, _ in listener.received_with_times(o)[-1:])
                       for o in outputs)
        if not listener.wait_for(all_answered, START_TIMEOUT_S):
            dead = [p.output()[-2000:] for p in processes if not p.running()]
            raise InferError(f'no detections from {side} on {len(topics)} camera(s) in '
                             f'{START_TIMEOUT_S:.0f} s; see {logs}' +
                             (f'\n{dead[0]}' if dead else ''))
        time.sleep(SETTLE_S)
        pids = [p.proc.pid for p in processes]
        cpu = sum(process_cpu_s(pid) for pid in pids)
        start = time.time()
        time.sleep(args.seconds)
        end = time.time()
        cpu = sum(process_cpu_s(pid) for pid in pids) - cpu
        rss = sum(process_rss_mb(pid) for pid in pids)
    finally:
        codes = [p.stop() for p in processes]
    per_camera = []
    ages: List[float] = []
    from hobot_npu_infer.ros.detection_msgs import ages_ms
    for output in outputs:
        records = listener.received_between(output, start, end)
        per_camera.append(len(records))
        ages += ages_ms(records)
    return {'ages': ages, 'messages': sum(per_camera), 'per_camera': per_camera,
            'seconds': end - start, 'cpu_s': cpu, 'rss_mb': rss, 'codes': codes,
            'processes': len(processes)}


def side_row(windows: List[Dict[str, object]]) -> Dict[str, float]:
    """Pool one side's windows into its row."""
    seconds = sum(w['seconds'] for w in windows)
    messages = sum(w['messages'] for w in windows)
    cameras = len(windows[0]['per_camera'])
    latency = summarize(a for w in windows for a in w['ages'])
    per_camera = [sum(w['per_camera'][i] for w in windows) / seconds for i in range(cameras)]
    return {'processes': windows[0]['processes'],
            'fps': round(messages / seconds, 2),
            'fps_per_camera_min': round(min(per_camera), 2),
            'latency_ms_p50': round(latency.p50, 1), 'latency_ms_p99': round(latency.p99, 1),
            'cpu_ms_per_frame': round(sum(w['cpu_s'] for w in windows) * 1e3 / messages, 1)
            if messages else 0.0,
            'rss_mb': round(max(w['rss_mb'] for w in windows), 1),
            'frames': messages,
            'exit_codes': sorted({c for w in windows for c in w['codes']})}


def ratios(ours: Dict[str, float], peer: Dict[str, float]) -> Dict[str, Optional[float]]:
    return {key: round(ours[key] / peer[key], 3) if peer[key] else None for key in RATIO_KEYS}


def scenario(cameras: int, args, listener, logs: str) -> Dict[str, object]:
    """Run one camera process and the two sides on it in alternating rounds."""
    from std_msgs.msg import String
    topics = [f'/peer_bench/cam{i}/image_raw' for i in range(cameras)]
    for topic in topics:
        listener.subscribe(String, f'{topic}/detections', qos=100)
    camera = RosProcess('image_source', {
        'images': [args.images[i % len(args.images)] for i in range(cameras)],
        'topics': topics, 'rate_hz': args.rate, 'size': f'{args.size[0]}x{args.size[1]}'},
        log_path=os.path.join(logs, f'cameras-{cameras}.log'))
    windows: Dict[str, List[Dict[str, object]]] = {side: [] for side in SIDES}
    try:
        for round_ in range(args.rounds):
            for side in SIDES:
                if not camera.running():
                    raise InferError(f'the cameras stopped: {camera.output()[-2000:]}')
                windows[side].append(measure_side(side, topics, args, listener, logs, round_))
                row = side_row(windows[side][-1:])
                print(f'{SCENARIOS.get(cameras, cameras)} round {round_ + 1} {side}: '
                      f"{row['fps']} fps, p50 {row['latency_ms_p50']} ms, "
                      f"{row['cpu_ms_per_frame']} CPU ms/frame, {row['rss_mb']} MB",
                      file=sys.stderr, flush=True)
    finally:
        camera.stop()
    rows = {side: side_row(windows[side]) for side in SIDES}
    return {**rows, 'ours_vs_peer': ratios(rows['ours'], rows['peer']),
            'cameras': cameras, 'offered_fps': round(cameras * args.rate, 2)}


def peer_benchmark(args) -> Dict[str, object]:
    loopback_environment()  # before rclpy starts in this process
    from hobot_npu_infer.harness.listener import Listener
    logs = os.path.join('out', 'bench-peer')
    os.makedirs(logs, exist_ok=True)
    listener = Listener('peer_bench_listener')
    result: Dict[str, object] = {'settings': {
        'model': os.path.abspath(args.model), 'peer_python': args.peer_python,
        'images': args.images, 'size': f'{args.size[0]}x{args.size[1]}',
        'rate_hz_per_camera': args.rate, 'rounds': args.rounds, 'seconds': args.seconds,
        'order': list(SIDES), 'ours': 'infer_node, detections_format json, max_batch_size = '
        'cameras', 'peer': "one ultralytics_peer per camera: YOLO(model, task='detect')"
        '.predict(image, imgsz=640, conf=0.25, iou=0.7) in its callback'}}
    try:
        for cameras in args.cameras:
            name = SCENARIOS.get(cameras, f'{cameras}_cameras')
            result[name] = scenario(cameras, args, listener, logs)
    finally:
        listener.close()
    return result


def format_table(result) -> str:
    lines = ['scenario | side | ' + ' | '.join(ROW_KEYS), '--- | --- | ' +
             ' | '.join('---' for _ in ROW_KEYS)]
    for name, data in result.items():
        if name == 'settings':
            continue
        for side in SIDES:
            lines.append(f'{name} | {side} | ' + ' | '.join(str(data[side][k]) for k in ROW_KEYS))
        lines.append(f'{name} | ours/peer | {data["ours"]["processes"]}/'
                     f'{data["peer"]["processes"]} | ' + ' | '.join(
                         str(data['ours_vs_peer'][k]) if k in RATIO_KEYS else ''
                         for k in ROW_KEYS[1:]))
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = command_parser('hobot_npu_infer.bench.peer_bench', __doc__)
    parser.add_argument('--model', default=default_model(),
                        help='ONNX file both sides run (default: $HOBOT_NPU_INFER_MODELS/'
                        'best_fp16.onnx, the fall detector `make models` fetches)')
    parser.add_argument('--peer-python', default=os.environ.get(PYTHON_VARIABLE) or
                        '.venv-ultralytics/bin/python',
                        help="the Ultralytics environment's Python (default: "
                        f'${PYTHON_VARIABLE}, else .venv-ultralytics/bin/python; `make '
                        'ultralytics`)')
    parser.add_argument('--rounds', type=int, default=3, help='rounds of ours then peer (3)')
    parser.add_argument('--seconds', type=float, default=20.0,
                        help='measured seconds per side and round (20)')
    parser.add_argument('--cameras', default='1,4',
                        help='scenarios: cameras per scenario (1,4)')
    parser.add_argument('--rate', type=float, default=30.0,
                        help='frames per second of each camera (30, above what either side '
                        'processes here)')
    parser.add_argument('--size', type=size_argument, default=(640, 480),
                        help='camera frame size WxH (640x480)')
    parser.add_argument('--images', nargs='+', default=default_images(),
                        help='photos or sample names, camera i shows image i (default: the '
                        'fetched bus.jpg and zidane.jpg, else astronaut and camera)')
    parser.add_argument('--json', metavar='OUT', default='')
    args = parser.parse_args(argv)
    args.cameras = parse_counts(args.cameras, 'cameras')
    if args.rounds < 1 or args.seconds <= 0 or args.rate <= 0:
        raise ConfigError('--rounds, --seconds and --rate must be positive')
    if not os.path.isfile(args.model):
        raise ConfigError(f'model file {args.model} not found: run `make models` or give '
                          '--model')
    if not os.access(args.peer_python, os.X_OK):
        raise ConfigError(f'no Ultralytics environment at {args.peer_python}: run `make '
                          f'ultralytics` or set {PYTHON_VARIABLE}')
    args.model = os.path.abspath(args.model)
    args.peer_python = os.path.abspath(args.peer_python)
    result = peer_benchmark(args)
    print(format_table(result))
    print(json.dumps(result, indent=1))
    write_json(args.json, result)
    return 0


cli = console_script(main)


if __name__ == '__main__':
    cli()
