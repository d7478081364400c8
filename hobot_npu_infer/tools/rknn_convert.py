"""
ONNX to .rknn for a Rockchip board.

Usage: ``python -m hobot_npu_infer.tools.rknn_convert MODEL -o OUT.rknn``.

Builds with rknn-toolkit2 (fp16, or int8 calibrated on real images with ``--quantize --dataset``),
at a fixed input size and a compiled batch (``rknn_batch_size``), writes the .rknn file, and runs
it once in the simulator so a model that cannot run is caught on the PC, not on the robot. The
board feeds the model uint8 pixels, so the model's own normalisation is folded in: what ``detect``
would use (an Ultralytics export's metadata, a built-in model's profile, else the layout its
outputs show; YOLO: 1/255), unless ``--mean``/``--std`` are given.
"""

import argparse
import os
import sys
from typing import List, Optional, Tuple

from hobot_npu_infer.core.backends import create_backend
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.models.builtin_models import resolve_model, ResolvedModel
from hobot_npu_infer.core.models.model_file import read_model_file
from hobot_npu_infer.core.pipeline.model_settings import choose_settings, ModelSettings
from hobot_npu_infer.core.pipeline.pipeline_config import PipelineConfig
from hobot_npu_infer.tools.cli import command_parser, console_script


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = command_parser('hobot_npu_infer.tools.rknn_convert', __doc__)
    parser.add_argument('model', help='built-in model name (centerface) or .onnx file')
    parser.add_argument('-o', '--output', required=True, help='the .rknn file to write')
    parser.add_argument('--target', default='rk3588',
                        help='rk3588, rk3576, rk3566, rk3568, rk3562')
    parser.add_argument('--batch', type=int, default=1, help='compiled batch (rknn_batch_size)')
    parser.add_argument('--input-size', default='', metavar='WxH',
                        help="size for a model with dynamic height/width (default: the export's "
                        'own, else 640x640)')
    parser.add_argument('--quantize', action='store_true', help='int8 (needs --dataset)')
    parser.add_argument('--dataset', default='',
                        help='calibration images: a directory, a .txt list, or comma-separated')
    parser.add_argument('--decoder', default='',
                        help='the decoder the model is for, which sets its normalisation when '
                        "the file does not say (default: the file's metadata, else its outputs)")
    parser.add_argument('--mean', default='', metavar='R,G,B',
                        help='per-channel mean of 0..255 pixels folded into the model (default: '
                        "the model's own, 0,0,0 for YOLO)")
    parser.add_argument('--std', default='', metavar='R,G,B',
                        help='per-channel std of 0..255 pixels folded into the model (default: '
                        "the model's own, 255,255,255 for YOLO)")
    return parser.parse_args(argv)


def _numbers(text: str, flag: str) -> List[float]:
    try:
        values = [float(v) for v in text.split(',')]
    except ValueError:
        values = []
    if len(values) != 3:
        raise ConfigError(f'{flag} needs three numbers R,G,B, got {text!r}')
    return values


def model_settings(resolved: ResolvedModel, decoder: str) -> Tuple[Optional[ModelSettings], str]:
    """
    Return what ``detect`` would run the model with, or None and why not.

    A model no decoder fits can still be converted: it is then built without normalisation.
    A decoder named on the command line must fit.
    """
    try:
        settings = choose_settings(PipelineConfig(model=resolved.path, decoder=decoder),
                                   resolved.profile, read_model_file(resolved.path))
    except ConfigError as exc:
        if decoder:
            raise
        return None, str(exc)
    return settings, ''


def normalisation(args: argparse.Namespace, settings: Optional[ModelSettings],
                  why_unknown: str) -> Tuple[List[float], List[float], str, str]:
    """Return rknn's mean and std (of 0..255 pixels), the channel order, and where from."""
    if settings is None:
        mean, std, order = [0.0] * 3, [1.0] * 3, 'rgb'
        source = f'no pre-processing known ({why_unknown}); give --mean/--std if it normalises'
    else:
        pre = settings.preprocess
        mean, std = [m / pre.scale for m in pre.mean], [s / pre.scale for s in pre.std]
        order, source = pre.channel_order, "the model's pre-processing"
    if args.mean or args.std:
        mean = _numbers(args.mean, '--mean') if args.mean else mean
        std = _numbers(args.std, '--std') if args.std else std
        source = 'given'
    return mean, std, order, source


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    resolved = resolve_model(args.model)
    settings, why_unknown = model_settings(resolved, args.decoder)
    mean, std, order, source = normalisation(args, settings, why_unknown)
    size = args.input_size
    if not size and settings is not None and settings.preprocess.input_size:
        size = '{}x{}'.format(*settings.preprocess.input_size)  # a dynamic export's imgsz
    if settings is not None:
        print(settings.note, file=sys.stderr)
    print(f'folded into the model: mean {_short(mean)} std {_short(std)} of {order} 0..255 '
          f'pixels, from {source}', file=sys.stderr, flush=True)
    backend = create_backend(
        'rknn', target=args.target, batch_size=args.batch, input_size=size,
        quantize=args.quantize, dataset=args.dataset, mean=mean, std=std, channel_order=order)
    model = backend.convert(resolved.path, args.output)
    try:
        print(f'wrote {args.output} ({os.path.getsize(args.output) / 2 ** 20:.1f} MB) for '
              f'{backend.target}, {"int8" if args.quantize else "fp16"}, batch '
              f'{model.batch.describe()}')
        print('input: ' + ', '.join(s.describe() for s in model.inputs))
        print('outputs: ' + ', '.join(s.describe() for s in model.outputs))
    finally:
        model.close()
    return 0


def _short(values: List[float]) -> str:
    return '[' + ','.join(f'{v:g}' for v in values) + ']'


cli = console_script(main)


if __name__ == '__main__':
    cli()
