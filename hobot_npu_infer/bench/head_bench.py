"""
Heads at their own rates over one backbone, measured.

Usage: ``python -m hobot_npu_infer.bench.head_bench``.

A synthetic model (a heavy convolutional backbone and three light heads, built with the onnx
helper API from a fixed seed) runs for some seconds of a 30 Hz video with heads at 30, 10 and
5 Hz, three ways:
1. shared: the trunk once per frame any head needs, the due heads on its features;
2. separate: a full model (backbone included) per head, each at its own rate, as linking
   models into one packed file does;
3. every frame: the whole model with all heads on every frame.
Each is reported as compute time per second of video, against the analytical minimum (the
trunk at the fastest head's rate plus each head at its own), and the resident memory of (1)
against (2), each loaded in a fresh process.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

from hobot_npu_infer.bench.batch_bench import timed_ms
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.tools.cli import command_parser, console_script, write_json
import numpy as np

RATES = {'detect': 30.0, 'segment': 10.0, 'classify': 5.0}
FRAME_HZ = 30.0
SIZE = 96


def synthetic_model(path: str, seed: int = 7, width: int = 128, depth: int = 6) -> str:
    """
    Write a synthetic multi-head ONNX model (from ``seed``) to ``path`` and return ``path``.

    A backbone of ``depth`` 3x3 convolutions of ``width`` channels at a quarter of the input
    size (several MB of weights, as real backbones have); each head a 3x3 convolution of the
    same width, about a sixth of the backbone, then a small 1x1 one.
    """
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    rng = np.random.default_rng(seed)
    nodes, weights = [], []

    def conv(name, x, cin, cout, k=3, stride=1):
        w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        weights.append(numpy_helper.from_array(w, f'{name}.w'))
        nodes.append(helper.make_node('Conv', [x, f'{name}.w'], [f'{name}.conv'],
                                      pads=[k // 2] * 4, strides=[stride, stride]))
        nodes.append(helper.make_node('Relu', [f'{name}.conv'], [name]))
        return name

    x = conv('stem', 'image', 3, width, stride=4)
    for i in range(depth):
        x = conv(f'block{i}', x, width, width)
    outputs = []
    for head, classes in (('detect', 6), ('segment', 4), ('classify', 8)):
        h = conv(f'{head}.body', x, width, width)
        h = conv(f'{head}.out', h, width, classes, k=1)
        nodes.append(helper.make_node('Identity', [h], [head]))
        outputs.append(helper.make_tensor_value_info(head, TensorProto.FLOAT, None))
    graph = helper.make_graph(
        nodes, 'synthetic_multi_head',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _scheduler():
    from hobot_npu_infer.core.multi_head.head_scheduler import HeadRate, HeadScheduler
    return HeadScheduler([HeadRate(name, rate_hz=rate) for name, rate in RATES.items()])


def _parts(model_path: str, workdir: str) -> Dict[str, str]:
    """Write the shared split (trunk + heads) and one full model per head; return the paths."""
    from hobot_npu_infer.core.multi_head.graph_split import HeadSpec, save_split, split_model
    import onnx
    model = onnx.load(model_path)
    paths = save_split(split_model(model, [HeadSpec(h, [h]) for h in RATES]),
                       os.path.join(workdir, 'shared'))
    for head in RATES:
        separate = split_model(model, [HeadSpec(head, [head])])  # no sharing: the whole path
        paths[f'full-{head}'] = save_split(separate, os.path.join(workdir, f'full-{head}'))[head]
    return paths


def _load(paths: Dict[str, str], names: List[str], threads: int):
    from hobot_npu_infer.core.backends import create_backend
    backend = create_backend('onnxruntime', intra_op_threads=threads)
    return {name: backend.load(paths[name])[0] for name in names}


def measure(model_path: str, seconds: float, threads: int) -> Dict[str, object]:
    workdir = tempfile.mkdtemp(prefix='head-bench-')
    paths = _parts(model_path, workdir)
    paths['whole'] = model_path
    models = _load(paths, list(paths), threads)
    image = np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)

    part_ms: Dict[str, List[float]] = {name: [] for name in ['trunk', *RATES]}

    def shared_frame(due):
        start = time.perf_counter()
        features = dict(zip([o.name for o in models['trunk'].outputs],
                            models['trunk'].run({'image': image})))
        part_ms['trunk'].append((time.perf_counter() - start) * 1e3)
        for head in due:
            model = models[head]
            start = time.perf_counter()
            model.run({s.name: features[s.name] for s in model.inputs})
            part_ms[head].append((time.perf_counter() - start) * 1e3)

    def separate_frame(due):
        for head in due:
            models[f'full-{head}'].run({'image': image})

    modes = {'shared': shared_frame, 'separate': separate_frame,
             'every_frame': lambda due: models['whole'].run({'image': image})}
    for frame_fn in modes.values():  # warm-up: first runs allocate and plan
        frame_fn(list(RATES))
    for samples in part_ms.values():
        samples.clear()
    spent = dict.fromkeys(modes, 0.0)
    for _ in range(max(1, round(seconds))):  # the modes alternate each second of video
        for mode, frame_fn in modes.items():
            scheduler = _scheduler()
            for i in range(int(FRAME_HZ)):
                due = scheduler.due(i / FRAME_HZ)
                if mode == 'every_frame' or due:
                    spent[mode] += timed_ms(lambda: frame_fn(due))
    seconds = max(1, round(seconds))
    results = {mode: round(ms / seconds, 1) for mode, ms in spent.items()}
    # the least compute: each part's mean time at its rate (trunk at the fastest head's)
    trunk_ms = float(np.mean(part_ms['trunk']))
    head_ms = {h: float(np.mean(part_ms[h])) for h in RATES}
    minimum = trunk_ms * max(RATES.values()) + sum(head_ms[h] * r for h, r in RATES.items())
    return {
        'ms_per_second_of_video': results,
        'analytical_minimum_ms': round(minimum, 1),
        'ratio_to_minimum': {k: round(v / minimum, 3) for k, v in results.items()},
        'saving_over_separate_pct': round((1 - results['shared'] / results['separate']) * 100, 1),
        'trunk_ms': round(trunk_ms, 3), 'head_ms': {h: round(v, 3) for h, v in head_ms.items()},
        'rates_hz': RATES, 'frame_hz': FRAME_HZ, 'seconds_of_video': seconds,
        'paths': paths}


def resident_mb(paths: Dict[str, str], names: List[str], threads: int) -> float:
    """Resident memory a fresh process gains by loading and running ``names``."""
    code = (
        'import json, sys, numpy as np\n'
        'from hobot_npu_infer.bench.head_bench import _load, SIZE\n'
        'from hobot_npu_infer.core.telemetry.rolling_stats import process_rss_mb\n'
        'paths, names, threads = json.loads(sys.argv[1])\n'
        'from hobot_npu_infer.core.backends import create_backend\n'
        'create_backend("onnxruntime")\n'
        'before = process_rss_mb()\n'
        'models = _load(paths, names, threads)\n'
        'image = np.zeros((1, 3, SIZE, SIZE), np.float32)\n'
        'feats = {"image": image}\n'
        'for name in names:\n'
        '    m = models[name]\n'
        '    out = m.run({s.name: feats[s.name] for s in m.inputs})\n'
        '    feats.update(zip([o.name for o in m.outputs], out))\n'
        'print(process_rss_mb() - before)\n')
    proc = subprocess.run([sys.executable, '-c', code, json.dumps([paths, names, threads])],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise ConfigError(f'memory measurement failed: {proc.stderr.strip().splitlines()[-1]}')
    return round(float(proc.stdout.strip()), 1)


def main(argv: Optional[List[str]] = None) -> int:
    parser = command_parser('hobot_npu_infer.bench.head_bench', __doc__)
    parser.add_argument('--seconds', type=float, default=10.0, help='seconds of video (10)')
    parser.add_argument('--threads', type=int, default=0, help='inference threads (0: all)')
    parser.add_argument('--json', metavar='OUT', default='')
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.threads < 0:
        raise ConfigError('--seconds must be positive and --threads >= 0')
    model_path = synthetic_model(os.path.join(tempfile.mkdtemp(prefix='head-bench-'),
                                              'synthetic.onnx'))
    result = measure(model_path, args.seconds, args.threads)
    paths = result.pop('paths')
    result['resident_mb'] = {
        'shared': resident_mb(paths, ['trunk', *RATES], args.threads),
        'separate': resident_mb(paths, [f'full-{h}' for h in RATES], args.threads)}
    rows = result['ms_per_second_of_video']
    print(f'heads at {", ".join(f"{h} {r:g} Hz" for h, r in RATES.items())} on a '
          f'{FRAME_HZ:g} Hz video; compute per second of video')
    print('mode | ms per s of video | x analytical minimum')
    print('--- | --- | ---')
    for mode, ms in rows.items():
        print(f'{mode} | {ms} | {result["ratio_to_minimum"][mode]}')
    print(f'analytical minimum | {result["analytical_minimum_ms"]} | 1.0')
    print(f'shared saves {result["saving_over_separate_pct"]} % over separate models; resident '
          f'memory shared {result["resident_mb"]["shared"]} MB against separate '
          f'{result["resident_mb"]["separate"]} MB')
    write_json(args.json, result)
    return 0


cli = console_script(main)


if __name__ == '__main__':
    cli()
