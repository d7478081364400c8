"""
The batch-size table: raw backend against our whole pipeline, measured side by side.

``python -m hobot_npu_infer.bench.batch_bench --model centerface --batch 1,2,4,8
--input-size 640x480`` sweeps batch sizes, input sizes (``--input-size 320x256,640x480``) and
runtime counts (``--runtimes 1,2``). A set of fixed-batch files, one per batch size as NPU
toolchains compile them, is given with braces: ``--model 'osnet-batch{1,4,8}.rknn'``.
``python -m hobot_npu_infer.bench.batch_bench --node``: the node against the raw backend
(node_bench.py); ``--node --sources 4 --rate 5``: four cameras into one node, batched against
unbatched.

Per row, raw inference runs (one prepared tensor, the backend only) and, with one runtime,
pipeline runs (pre-processing from a photo, inference, decoding) alternate, so both see the same
machine load and their ratio is the cost of our code. With several runtimes, as many threads
run batches concurrently, one per runtime: images/s is then the throughput of the pool and the
batch latency is what each run took (latency: one runtime; throughput: several).
"""

import argparse
import itertools
import os
import platform
import re
import threading
import time
from typing import Dict, List, Optional, Tuple

from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.imaging.geometry import parse_size
from hobot_npu_infer.core.imaging.sample_images import load_image_or_sample
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline
from hobot_npu_infer.core.telemetry.rolling_stats import summarize
from hobot_npu_infer.tools.cli import (
    add_model_arguments,
    command_parser,
    console_script,
    pipeline_config,
    write_json,
)

COLUMNS = ('model', 'input_size', 'batch', 'runtimes', 'ms_per_batch_p50', 'ms_per_batch_p99',
           'ms_per_image', 'images_per_s', 'pipeline_ms_per_image', 'overhead_pct')


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = command_parser('hobot_npu_infer.bench.batch_bench', __doc__)
    add_model_arguments(parser)
    parser.add_argument('--batch', default='1,2,4,8',
                        help='comma-separated batch sizes (a model compiled to a fixed batch: its '
                        'own only; a batch-1 ONNX export is made batchable where it can be)')
    parser.add_argument('--input-size', default='640x480', metavar='WxH[,WxH...]',
                        help='one input size or a comma-separated sweep')
    parser.add_argument('--runtimes', default='1',
                        help='comma-separated runtime counts (concurrent engine instances)')
    parser.add_argument('--image', default='astronaut',
                        help='sample photo name or image file fed to the pipeline')
    parser.add_argument('--seconds', type=float, default=None,
                        help='measuring time per row (default 4); with --node, per side '
                        '(default 30)')
    parser.add_argument('--min-runs', type=int, default=10, help='runs per row at least')
    parser.add_argument('--json', metavar='OUT', default='', help='write the results as JSON')
    parser.add_argument('--plot', metavar='PNG', default='',
                        help='also plot per-image cost and latency against batch size '
                        '(needs matplotlib)')
    parser.add_argument('--heads', default='', help="a packed model's heads, as model_info "
                        "takes them: 'faces=537,538,539;landmarks=540'")
    parser.add_argument('--head', default='', help='with --heads: measure this head alone, on '
                        'the trunk features of the image (as vendors time one model of a '
                        'packed file)')
    parser.add_argument('--node', action='store_true',
                        help='measure infer_node across processes against the raw backend')
    parser.add_argument('--sources', type=int, default=1,
                        help='--node: cameras into one node (>1: batched against unbatched)')
    parser.add_argument('--rate', type=float, default=5.0, help='--node --sources: camera Hz')
    parser.add_argument('--camera-size', default='640x480,1280x720', metavar='WxH[,WxH...]',
                        help="--node: the camera's frame sizes, each measured in turn")
    return parser.parse_args(argv)


def parse_counts(text: str, what: str) -> List[int]:
    try:
        values = [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise ConfigError(f'--{what} must be comma-separated integers, got {text!r}') from None
    if not values or min(values) < 1:
        raise ConfigError(f'--{what} values must be >= 1, got {text!r}')
    return values


def parse_sizes(text: str) -> List[Tuple[int, int]]:
    return [parse_size(part) for part in text.split(',') if part.strip()]


def expand_braces(pattern: str) -> List[str]:
    """'m-b{1,4}.rknn' -> ['m-b1.rknn', 'm-b4.rknn'] (several brace groups multiply)."""
    parts = re.split(r'\{([^{}]*)\}', pattern)
    choices = [[p] if i % 2 == 0 else p.split(',') for i, p in enumerate(parts)]
    return [''.join(combo) for combo in itertools.product(*choices)]


def timed_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def measure_row(pipeline: DetectionPipeline, image, batch: int, runtimes: int, seconds: float,
                min_runs: int) -> Dict[str, object]:
    images = [image] * batch
    prepared = pipeline.prepare(images)
    for runtime in range(runtimes):  # warm-up: allocator, thread pools, first-run kernels
        pipeline.decode(pipeline.infer(prepared, runtime), prepared)
    if runtimes == 1:
        raw, full = alternate(pipeline, images, prepared, seconds, min_runs)
        elapsed_ms = sum(raw)
    else:
        (raw, elapsed_ms), full = concurrent(pipeline, prepared, runtimes, seconds, min_runs), []
    raw_s = summarize(raw)
    images_per_s = len(raw) * batch * 1e3 / elapsed_ms
    row = {'batch': batch, 'runtimes': runtimes,
           'ms_per_batch_p50': round(raw_s.p50, 3), 'ms_per_batch_p99': round(raw_s.p99, 3),
           'ms_per_image': round(1e3 / images_per_s, 3),  # the cost of an image in throughput
           'images_per_s': round(images_per_s, 2),
           'pipeline_ms_per_image': None, 'overhead_pct': None, 'runs': raw_s.count}
    if full:
        full_s = summarize(full)
        row['pipeline_ms_per_image'] = round(full_s.p50 / batch, 3)
        row['overhead_pct'] = round((full_s.p50 / raw_s.p50 - 1) * 100, 2)
    return row


def alternate(pipeline, images, prepared, seconds, min_runs):
    """Raw and whole-pipeline runs one after the other: the same load for both."""
    def whole_pipeline():
        batch_in = pipeline.prepare(images)
        pipeline.decode(pipeline.infer(batch_in), batch_in)

    raw, full = [], []
    deadline = time.perf_counter() + seconds
    while len(raw) < min_runs or time.perf_counter() < deadline:
        raw.append(timed_ms(lambda: pipeline.infer(prepared)))
        full.append(timed_ms(whole_pipeline))
    return raw, full


def concurrent(pipeline, prepared, runtimes: int, seconds: float,
               min_runs: int) -> Tuple[List[float], float]:
    """Every runtime runs batches on its own thread; the run times and the wall time, in ms."""
    times: List[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(runtime: int) -> None:
        while True:
            ms = timed_ms(lambda: pipeline.infer(prepared, runtime))
            with lock:
                times.append(ms)
                if len(times) >= min_runs and time.perf_counter() >= deadline:
                    return

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(r,)) for r in range(runtimes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times, (time.perf_counter() - start) * 1e3


def format_table(rows: List[Dict[str, object]]) -> str:
    lines = [' | '.join(COLUMNS), ' | '.join('---' for _ in COLUMNS)]
    lines += [' | '.join('-' if row.get(c) is None else str(row[c]) for c in COLUMNS)
              for row in rows]
    return '\n'.join(lines)


def plot(rows: List[Dict[str, object]], path: str) -> None:
    """Per-image cost and batch latency against batch size, one line per size and runtimes."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (cost, latency) = plt.subplots(1, 2, figsize=(10, 4))
    key = lambda r: (r['model_set'], r['input_size'], r['runtimes'])  # noqa: E731
    for (model, size, runtimes), group in itertools.groupby(sorted(rows, key=key), key=key):
        group = sorted(group, key=lambda r: r['batch'])
        label = f'{os.path.basename(model)} {size}, {runtimes} runtime(s)'
        batches = [r['batch'] for r in group]
        cost.plot(batches, [r['ms_per_image'] for r in group], marker='o', label=label)
        cost.set_xticks(batches)
        latency.set_xticks(batches)
        latency.plot(batches, [r['ms_per_batch_p50'] for r in group], marker='o', label=label)
        latency.fill_between(batches, [r['ms_per_batch_p50'] for r in group],
                             [r['ms_per_batch_p99'] for r in group], alpha=0.15)
    cost.set(xlabel='batch size', ylabel='ms per image (1 / throughput)', title='cost per image')
    latency.set(xlabel='batch size', ylabel='ms per batch (p50 to p99)',
                title='latency of a batch')
    for axes in (cost, latency):
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}'


def head_rows(args, size: Tuple[int, int], batches: List[int], image) -> List[Dict[str, object]]:
    """One head of a packed model alone, on trunk features computed once beforehand."""
    from hobot_npu_infer.core.backends.selection import open_backend
    from hobot_npu_infer.core.models.builtin_models import resolve_model
    from hobot_npu_infer.core.multi_head.packed_model import load_split
    from hobot_npu_infer.core.pipeline.model_settings import host_preprocess, preprocess_settings
    from hobot_npu_infer.core.pipeline.preprocess import Preprocessor
    from hobot_npu_infer.tools.model_info import parse_heads
    resolved = resolve_model(args.model)
    config = pipeline_config(args, size)
    packed = load_split(open_backend(config.backend, config.backend_options)[0],
                        resolved.path, parse_heads(args.heads))
    if args.head not in packed.heads:
        raise ConfigError(f'--head {args.head!r} is not one of {", ".join(packed.heads)}')
    preprocess, _ = host_preprocess(preprocess_settings(config, resolved.profile, ''),
                                    packed.input)
    preprocessor = Preprocessor(preprocess, packed.input)
    rows = []
    for batch in batches:
        features = packed.features(preprocessor.prepare([image] * batch).tensor)
        packed.run_head(args.head, features)  # warm-up
        times: List[float] = []
        deadline = time.perf_counter() + args.seconds
        while len(times) < args.min_runs or time.perf_counter() < deadline:
            times.append(timed_ms(lambda: packed.run_head(args.head, features)))
        s = summarize(times)
        rows.append({'model': f'{args.model}:{args.head}', 'model_set': args.model,
                     'input_size': f'{size[0]}x{size[1]}', 'batch': batch, 'runtimes': 1,
                     'ms_per_batch_p50': round(s.p50, 3), 'ms_per_batch_p99': round(s.p99, 3),
                     'ms_per_image': round(s.mean / batch, 3),
                     'images_per_s': round(batch * 1e3 / s.mean, 2),
                     'pipeline_ms_per_image': None, 'overhead_pct': None, 'runs': s.count})
        print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    return rows


def batch_table(args) -> List[Dict[str, object]]:
    model_set = args.model
    models = expand_braces(model_set)
    batches = parse_counts(args.batch, 'batch')
    runtime_counts = parse_counts(args.runtimes, 'runtimes')
    image = load_image_or_sample(args.image)
    if args.head or args.heads:
        if not (args.head and args.heads):
            raise ConfigError('--head and --heads go together')
        return [row for size in parse_sizes(args.input_size)
                for row in head_rows(args, size, batches, image)]
    rows = []
    for model, size in itertools.product(models, parse_sizes(args.input_size)):
        args.model = model
        pipeline = DetectionPipeline.from_config(
            pipeline_config(args, size, num_runtimes=max(runtime_counts),
                            max_batch=max(batches)))  # a batch-1 ONNX export made batchable
        fixed = pipeline.model.batch.fixed_size
        sizes = [fixed] if fixed else batches
        for batch, runtimes in itertools.product(sizes, runtime_counts):
            row = measure_row(pipeline, image, batch, runtimes, args.seconds, args.min_runs)
            rows.append({'model': model, 'model_set': model_set,
                         'input_size': f'{size[0]}x{size[1]}', **row})
            print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.seconds is None:
        args.seconds = 30.0 if args.node else 4.0
    if args.seconds <= 0 or args.sources < 1 or args.rate <= 0:
        raise ConfigError('--seconds, --sources and --rate must be positive')
    print(f'# {args.model} on {args.backend}; {machine()}', flush=True)
    if args.node:
        from hobot_npu_infer.bench.node_bench import (
            format_node_table,
            multi_source_benchmark,
            node_benchmark,
        )
        args.input_size = parse_sizes(args.input_size)[0]
        args.camera_sizes = [f'{w}x{h}' for w, h in parse_sizes(args.camera_size)]
        if args.sources > 1:
            result = multi_source_benchmark(args)
        else:
            pipeline = DetectionPipeline.from_config(pipeline_config(args, args.input_size))
            result = node_benchmark(args, pipeline)
        print(format_node_table(result))
    else:
        print(' | '.join(COLUMNS), flush=True)
        result = batch_table(args)
        print()
        print(format_table(result))
        if args.plot:
            plot(result, args.plot)
            print(f'plot: {args.plot}')
    write_json(args.json, result)
    return 0


cli = console_script(main)


if __name__ == '__main__':
    cli()
