"""
Accuracy after conversion: ``python -m hobot_npu_infer.tools.compare --backend rknn IMAGE ...``.

Runs one model on two backends (by default against ONNX Runtime) over the same images and
reports, per score threshold, the detections matched, missed and extra against the reference and
the IoU of the matches; the largest difference of each raw output; and each backend's memory:
resident memory the model added where it runs, and the vendor's own report where one exists.
Prints a table, and JSON with ``--json OUT``.
"""

import argparse
import sys
from typing import Dict, List, Optional, Tuple

from hobot_npu_infer.core.backends.selection import parse_options
from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.imaging.image_files import read_image
from hobot_npu_infer.core.pipeline.detection_match import match_detections, MatchCounts
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline
from hobot_npu_infer.core.streaming.offline import expand_paths
from hobot_npu_infer.core.telemetry.rolling_stats import process_rss_mb
from hobot_npu_infer.tools.cli import (
    add_model_arguments,
    backend_options,
    command_parser,
    console_script,
    pipeline_config,
    size_argument,
    write_json,
)
import numpy as np


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = command_parser('hobot_npu_infer.tools.compare', __doc__)
    parser.add_argument('images', nargs='+', metavar='IMAGE', help='image files or directories')
    add_model_arguments(parser)
    parser.add_argument('--reference', default='onnxruntime', help='the backend to trust')
    parser.add_argument('--reference-model', default='',
                        help='the model the reference runs (default: --model), e.g. the .onnx '
                        'a .bin or .rknn file was converted from')
    parser.add_argument('--reference-option', action='append', default=[], metavar='KEY=VALUE',
                        help='a reference backend option; repeatable')
    parser.add_argument('--input-size', type=size_argument, default=None, metavar='WxH',
                        help='model input size for both backends')
    parser.add_argument('--thresholds', default='0.3,0.5,0.7',
                        help='score thresholds to report at (default: 0.3,0.5,0.7)')
    parser.add_argument('--match-iou', type=float, default=0.5,
                        help='IoU at which two detections of one class match (default: 0.5)')
    parser.add_argument('--json', default='', metavar='OUT', help='also write the report here')
    return parser.parse_args(argv)


def _thresholds(text: str) -> List[float]:
    try:
        values = sorted({float(v) for v in text.split(',') if v.strip()})
    except ValueError:
        raise ConfigError(f'--thresholds must be numbers like 0.3,0.5, got {text!r}') from None
    if not values or not all(0 <= v <= 1 for v in values):
        raise ConfigError(f'--thresholds must be within [0, 1], got {text!r}')
    return values


def _load(args: argparse.Namespace, backend: str, model: str, items: List[str],
          threshold: float) -> Dict[str, object]:
    config = pipeline_config(args, args.input_size)
    config.backend, config.model, config.score_threshold = backend, model, threshold
    config.backend_options = backend_options(args.threads, items)
    before = process_rss_mb()
    pipeline = DetectionPipeline.from_config(config)
    model = pipeline.model
    memory = model.memory_mb if model.memory_mb is not None else process_rss_mb() - before
    return {'pipeline': pipeline, 'memory': {
        'backend': backend, 'note': pipeline.backend_note, 'resident_mb': round(memory, 1),
        'vendor_report': model.vendor_memory_report or 'none'}}


def _run(pipeline: DetectionPipeline, image: np.ndarray) -> Tuple[List[Detection],
                                                                  List[np.ndarray]]:
    """One image through ``pipeline``: its detections, and the raw outputs they came from."""
    batch = pipeline.prepare([image])
    outputs = pipeline.infer(batch)
    return pipeline.second_stage([(image, 'bgr')], pipeline.decode(outputs, batch))[0], outputs


def _output_differences(names: List[str], ours: List[np.ndarray],
                        theirs: List[np.ndarray]) -> Dict[str, float]:
    """Largest absolute difference of each raw output on one image (padding slots ignored)."""
    return {name: round(float(np.abs(a[:1].astype(np.float64) - b[:1]).max()), 6)
            for name, a, b in zip(names, ours, theirs) if a[:1].shape == b[:1].shape}


def compare(args: argparse.Namespace) -> Dict[str, object]:
    thresholds = _thresholds(args.thresholds)
    paths = expand_paths(args.images)
    if not paths:
        raise ConfigError('no images to compare on')
    items = list(args.backend_option)
    options = parse_options(items)
    for prefix in ('', 'rknn.'):  # int8 without a calibration set: calibrate on these images
        if options.get(prefix + 'quantize') is True and not options.get(prefix + 'dataset'):
            items.append(f'{prefix}dataset=' + ','.join(paths))
            print('note: calibrating int8 on the compared images themselves; give a separate '
                  f'set with --backend-option {prefix}dataset=DIR', file=sys.stderr)
    reference = _load(args, args.reference, args.reference_model or args.model,
                      args.reference_option, thresholds[0])
    candidate = _load(args, args.backend, args.model, items, thresholds[0])
    counts = {t: MatchCounts() for t in thresholds}
    differences: Dict[str, float] = {}
    try:
        for path in paths:
            image = read_image(path)
            ref, theirs = _run(reference['pipeline'], image)
            got, ours = _run(candidate['pipeline'], image)
            for t in thresholds:
                counts[t].add(match_detections([d for d in ref if d.score >= t],
                                               [d for d in got if d.score >= t], args.match_iou))
            names = [o.name for o in candidate['pipeline'].model.outputs]
            for name, diff in _output_differences(names, ours, theirs).items():
                differences[name] = max(diff, differences.get(name, 0.0))
    finally:
        for loaded in (reference, candidate):
            for model in loaded['pipeline'].runtimes:
                model.close()
    return {'model': args.model, 'images': len(paths), 'match_iou': args.match_iou,
            'thresholds': [{'score_threshold': t, **counts[t].as_dict()} for t in thresholds],
            'output_max_abs_diff': differences,
            'memory': [reference['memory'], candidate['memory']]}


def table(report: Dict[str, object]) -> str:
    lines = [f'{report["model"]} on {report["images"]} image(s), match IoU '
             f'{report["match_iou"]:g}', '',
             '| score >= | matched | missed | extra | IoU mean | IoU min |',
             '|---|---|---|---|---|---|']
    for row in report['thresholds']:
        lines.append(f'| {row["score_threshold"]:g} | {row["matched"]} | {row["missed"]} | '
                     f'{row["extra"]} | {row["iou_mean"] if row["iou_mean"] is not None else "-"}'
                     f' | {row["iou_min"] if row["iou_min"] is not None else "-"} |')
    lines += ['', 'output max abs diff: ' + ', '.join(
        f'{k} {v:g}' for k, v in report['output_max_abs_diff'].items())]
    for memory in report['memory']:
        lines.append(f'memory {memory["backend"]}: {memory["resident_mb"]} MB resident after load'
                     f'; vendor report: {memory["vendor_report"]}')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    report = compare(args)
    print(table(report))
    write_json(args.json, report)
    sys.stdout.flush()
    return 0


cli = console_script(main)


if __name__ == '__main__':
    cli()
