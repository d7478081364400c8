"""
Run a detector on image files.

Usage: ``python -m hobot_npu_infer.tools.detect IMAGE ... --model centerface``.

Files and directories (their images, sorted) go through the same batcher and runtime pool as
live camera streams (``--batch N --runtimes K``); results come out in input order, then a line
on stderr with the total images/s. A bad image is reported on one line and skipped; the exit
code is 1 when any image failed and 2 when the model itself cannot be used.
"""

import argparse
import json
import os
import sys
from typing import List, Optional

from hobot_npu_infer.core.backends.selection import AUTO
from hobot_npu_infer.core.errors import ConfigError, InferError
from hobot_npu_infer.core.imaging.annotate import draw_detections
from hobot_npu_infer.core.imaging.image_files import write_image
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline
from hobot_npu_infer.core.streaming.offline import detect_files, expand_paths
from hobot_npu_infer.core.streaming.stream_runner import FrameResult
from hobot_npu_infer.tools.cli import (
    add_model_arguments,
    command_parser,
    console_script,
    pipeline_config,
    size_argument,
)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = command_parser('hobot_npu_infer.tools.detect', __doc__)
    parser.add_argument('images', nargs='+', metavar='IMAGE')
    add_model_arguments(parser)
    parser.add_argument('--input-size', type=size_argument, default=None, metavar='WxH',
                        help="model input size (default: the model's own, else the image's)")
    parser.add_argument('--json', action='store_true', help='one JSON object per image per line')
    parser.add_argument('--save-annotated', metavar='DIR', default='',
                        help='write each image with its detections drawn into DIR')
    parser.add_argument('--batch', type=int, default=1,
                        help='images per run (a fixed-batch model uses its own size)')
    parser.add_argument('--runtimes', type=int, default=1,
                        help='engine instances running batches concurrently')
    return parser.parse_args(argv)


def summary_line(path: str, detections, timing) -> str:
    found = ', '.join(f'{d.class_name} {d.score:.2f} at ({d.box[0]:.0f}, {d.box[1]:.0f}, '
                      f'{d.box[2]:.0f}, {d.box[3]:.0f})' for d in detections)
    total = sum(timing.values())
    return f'{path}: {len(detections)} detection(s){": " + found if found else ""} ' \
           f'[{total:.1f} ms]'


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.batch < 1 or args.runtimes < 1:
        raise ConfigError('--batch and --runtimes must be >= 1')
    paths = expand_paths(args.images)
    pipeline = DetectionPipeline.from_config(
        pipeline_config(args, args.input_size, num_runtimes=args.runtimes, max_batch=args.batch))
    if args.backend == AUTO:
        print(pipeline.backend_note, file=sys.stderr, flush=True)
    print(pipeline.model_note, file=sys.stderr, flush=True)
    if args.save_annotated:
        os.makedirs(args.save_annotated, exist_ok=True)

    def on_result(index: int, path: str, result: FrameResult) -> None:
        h, w = result.image.shape[:2]
        timing = {k: result.stage_ms[k] for k in ('preprocess', 'inference', 'postprocess')}
        if args.json:
            print(json.dumps({
                'image': path, 'width': w, 'height': h,
                'detections': [d.to_dict() for d in result.detections],
                'timing_ms': {k: round(v, 3) for k, v in timing.items()}}), flush=True)
        else:
            print(summary_line(path, result.detections, timing), flush=True)
        if args.save_annotated:
            out = os.path.join(args.save_annotated, os.path.basename(path))
            write_image(out, draw_detections(result.image, result.detections))

    def on_error(index: int, path: str, error: InferError) -> None:
        print(f'error: {error}', file=sys.stderr, flush=True)

    summary = detect_files(pipeline, paths, args.batch, on_result, on_error)
    print(f'{summary.images} image(s) in {summary.seconds:.2f} s: '
          f'{summary.images_per_s:.1f} images/s (batch {args.batch}, '
          f'{args.runtimes} runtime(s)){f", {summary.failed} failed" if summary.failed else ""}',
          file=sys.stderr)
    return 1 if summary.failed else 0


cli = console_script(main)


if __name__ == '__main__':
    cli()
