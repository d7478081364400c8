"""
ONNX to .rknn for a Rockchip board.

Usage: ``python -m hobot_npu_infer.tools.rknn_convert MODEL -o OUT.rknn``.

Builds with rknn-toolkit2 (fp16, or int8 calibrated on real images with ``--quantize --dataset``),
at a fixed input size and a compiled batch (``rknn_batch_size``), writes the .rknn file, and runs
it once in the simulator so a model that cannot run is caught on the PC, not on the robot.
"""

import argparse
import os
from typing import List, Optional

from hobot_npu_infer.core.backends import create_backend
from hobot_npu_infer.core.models.builtin_models import resolve_model
from hobot_npu_infer.tools.cli import command_parser, console_script


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = command_parser('hobot_npu_infer.tools.rknn_convert', __doc__)
    parser.add_argument('model', help='built-in model name (centerface) or .onnx file')
    parser.add_argument('-o', '--output', required=True, help='the .rknn file to write')
    parser.add_argument('--target', default='rk3588',
                        help='rk3588, rk3576, rk3566, rk3568, rk3562')
    parser.add_argument('--batch', type=int, default=1, help='compiled batch (rknn_batch_size)')
    parser.add_argument('--input-size', default='', metavar='WxH',
                        help='size for a model with dynamic height/width (default 640x640)')
    parser.add_argument('--quantize', action='store_true', help='int8 (needs --dataset)')
    parser.add_argument('--dataset', default='',
                        help='calibration images: a directory, a .txt list, or comma-separated')
    parser.add_argument('--mean', default='0,0,0', help='per-channel mean folded into the model')
    parser.add_argument('--std', default='1,1,1', help='per-channel std folded into the model')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    backend = create_backend(
        'rknn', target=args.target, batch_size=args.batch, input_size=args.input_size,
        quantize=args.quantize, dataset=args.dataset,
        mean=[float(v) for v in args.mean.split(',')], std=[float(v) for v in args.std.split(',')])
    model = backend.convert(resolve_model(args.model).path, args.output)
    try:
        print(f'wrote {args.output} ({os.path.getsize(args.output) / 2 ** 20:.1f} MB) for '
              f'{backend.target}, {"int8" if args.quantize else "fp16"}, batch '
              f'{model.batch.describe()}')
        print('input: ' + ', '.join(s.describe() for s in model.inputs))
        print('outputs: ' + ', '.join(s.describe() for s in model.outputs))
    finally:
        model.close()
    return 0


cli = console_script(main)


if __name__ == '__main__':
    cli()
