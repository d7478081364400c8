"""The batch-size table: raw backend against our whole pipeline, measured side by side.

``python -m hobot_npu_infer.bench --model centerface --batch 1,2,4,8 --input-size 640x480``
``python -m hobot_npu_infer.bench --node``: the node against the raw backend (node_bench.py).

For each batch size, raw inference runs (one prepared tensor, the backend only) and pipeline
runs (pre-processing from a camera-size photo, inference, decoding) alternate, so both see the
same machine load and their ratio is the cost of our code.
"""

import argparse
import json
import os
import platform
import time
from typing import Dict, List, Optional

from .cli import add_model_arguments, pipeline_config, run, size_argument
from .core.errors import ConfigError
from .core.pipeline import DetectionPipeline
from .core.sample_images import load_image_or_sample
from .core.stats import summarize

COLUMNS = ('batch', 'ms_per_batch_p50', 'ms_per_batch_p99', 'ms_per_image', 'images_per_s',
           'pipeline_ms_per_image', 'overhead_pct')


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m hobot_npu_infer.bench',
                                     description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument('--batch', default='1,2,4,8', help='comma-separated batch sizes')
    parser.add_argument('--input-size', type=size_argument, default=(640, 480), metavar='WxH')
    parser.add_argument('--image', default='astronaut',
                        help='sample photo name or image file fed to the pipeline')
    parser.add_argument('--seconds', type=float, default=None,
                        help='measuring time per batch size (default 4); with --node, per side '
                        '(default 30)')
    parser.add_argument('--min-runs', type=int, default=10, help='runs per batch size at least')
    parser.add_argument('--json', metavar='OUT', default='', help='write the results as JSON')
    parser.add_argument('--node', action='store_true',
                        help='measure infer_node across processes against the raw backend')
    return parser.parse_args(argv)


def parse_batches(text: str) -> List[int]:
    try:
        sizes = [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise ConfigError(f'--batch must be comma-separated integers, got {text!r}') from None
    if not sizes or min(sizes) < 1:
        raise ConfigError(f'--batch sizes must be >= 1, got {text!r}')
    return sizes


def timed_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def measure_batch(pipeline: DetectionPipeline, image, batch: int, seconds: float,
                  min_runs: int) -> Dict[str, float]:
    images = [image] * batch
    prepared = pipeline.prepare(images)
    for _ in range(2):  # warm-up: allocator, thread pools, first-run kernels
        pipeline.decode(pipeline.infer(prepared), prepared)
    def whole_pipeline():
        batch_in = pipeline.prepare(images)
        pipeline.decode(pipeline.infer(batch_in), batch_in)

    raw, full = [], []
    deadline = time.perf_counter() + seconds
    while len(raw) < min_runs or time.perf_counter() < deadline:
        raw.append(timed_ms(lambda: pipeline.infer(prepared)))
        full.append(timed_ms(whole_pipeline))
    raw_s, full_s = summarize(raw), summarize(full)
    return {
        'batch': batch,
        'ms_per_batch_p50': round(raw_s.p50, 3),
        'ms_per_batch_p99': round(raw_s.p99, 3),
        'ms_per_image': round(raw_s.p50 / batch, 3),
        'images_per_s': round(batch * 1e3 / raw_s.mean, 2),
        'pipeline_ms_per_image': round(full_s.p50 / batch, 3),
        'overhead_pct': round((full_s.p50 / raw_s.p50 - 1) * 100, 2),
        'runs': raw_s.count,
    }


def format_table(rows: List[Dict[str, float]]) -> str:
    lines = [' | '.join(COLUMNS), ' | '.join('---' for _ in COLUMNS)]
    lines += [' | '.join(str(row[c]) for c in COLUMNS) for row in rows]
    return '\n'.join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(l.split(':', 1)[1].strip() for l in f if l.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}'


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.seconds is None:
        args.seconds = 30.0 if args.node else 4.0
    if args.seconds <= 0:
        raise ConfigError(f'--seconds must be positive, got {args.seconds}')
    batches = parse_batches(args.batch)
    pipeline = DetectionPipeline.from_config(pipeline_config(args, args.input_size))
    fixed = pipeline.model.batch.fixed_size
    if fixed is not None and any(b != fixed for b in batches):
        raise ConfigError(f'model {args.model} is compiled for batch {fixed} only; '
                          f'pass --batch {fixed} (one file per batch size for NPU models)')
    image = load_image_or_sample(args.image)
    w, h = args.input_size
    print(f'# {args.model} at {w}x{h} on {args.backend}; {machine()}', flush=True)
    if args.node:
        from .node_bench import format_node_table, node_benchmark
        result = node_benchmark(args, pipeline)
        print(format_node_table(result))
    else:
        result = [measure_batch(pipeline, image, b, args.seconds, args.min_runs) for b in batches]
        print(format_table(result))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    run(main)
