"""Run a detector on image files: ``python -m hobot_npu_infer.detect IMAGE ... --model centerface``.

A bad image is reported on one line and skipped; the exit code is 1 when any image failed and
2 when the model itself cannot be used.
"""

import argparse
import json
import os
import sys
from typing import List, Optional

from .cli import add_model_arguments, pipeline_config, run, size_argument
from .core.annotate import draw_detections
from .core.errors import ImageError
from .core.image_files import read_image, write_image
from .core.pipeline import DetectionPipeline


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m hobot_npu_infer.detect',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('images', nargs='+', metavar='IMAGE')
    add_model_arguments(parser)
    parser.add_argument('--input-size', type=size_argument, default=None, metavar='WxH',
                        help='model input size (default: the model\'s own, else the image\'s)')
    parser.add_argument('--json', action='store_true', help='one JSON object per image per line')
    parser.add_argument('--save-annotated', metavar='DIR', default='',
                        help='write each image with its detections drawn into DIR')
    return parser.parse_args(argv)


def summary_line(path: str, result, timing) -> str:
    found = ', '.join(f'{d.class_name} {d.score:.2f} at ({d.box[0]:.0f}, {d.box[1]:.0f}, '
                      f'{d.box[2]:.0f}, {d.box[3]:.0f})' for d in result.detections)
    total = sum(timing.values())
    return f'{path}: {len(result.detections)} detection(s){": " + found if found else ""} ' \
           f'[{total:.1f} ms]'


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    pipeline = DetectionPipeline.from_config(pipeline_config(args, args.input_size))
    if args.save_annotated:
        os.makedirs(args.save_annotated, exist_ok=True)
    failed = 0
    for path in args.images:
        try:
            image = read_image(path)
            [result], timing = pipeline.detect([image])
        except ImageError as exc:
            print(f'error: {exc}', file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps({
                'image': path, 'width': result.width, 'height': result.height,
                'detections': [d.to_dict() for d in result.detections],
                'timing_ms': {k: round(v, 3) for k, v in timing.items()}}), flush=True)
        else:
            print(summary_line(path, result, timing), flush=True)
        if args.save_annotated:
            out = os.path.join(args.save_annotated, os.path.basename(path))
            write_image(out, draw_detections(image, result.detections))
    return 1 if failed else 0


if __name__ == '__main__':
    run(main)
