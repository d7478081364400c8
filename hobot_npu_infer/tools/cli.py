"""What the command-line tools share: model options, and one-line errors instead of tracebacks."""

import argparse
import json
import sys
from typing import Callable, Dict, List, Optional, Tuple

from hobot_npu_infer.core.backends import backend_names
from hobot_npu_infer.core.backends.selection import AUTO, parse_options
from hobot_npu_infer.core.decoders import decoder_names
from hobot_npu_infer.core.errors import InferError
from hobot_npu_infer.core.imaging.geometry import parse_size
from hobot_npu_infer.core.pipeline.pipeline_config import PipelineConfig
from hobot_npu_infer.core.pipeline.preprocess import CHANNEL_ORDERS, RESIZE_MODES


def size_argument(text: str):
    try:
        return parse_size(text)
    except InferError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('model')
    group.add_argument('--model', default='centerface',
                       help='built-in model name or model file; an Ultralytics export needs '
                       'nothing else (default: centerface)')
    group.add_argument('--model-name', default='', help='one model of a multi-model file')
    group.add_argument('--backend', default='onnxruntime',
                       help=f'inference backend: {", ".join(backend_names())}, or {AUTO} (the '
                       "board's NPU, else onnxruntime)")
    group.add_argument('--backend-option', action='append', default=[], metavar='KEY=VALUE',
                       help='a backend option, e.g. rknn.quantize=true rknn.batch_size=4 '
                       '(a "backend." prefix applies it to that backend only); repeatable')
    group.add_argument('--decoder', default='', help='output decoder (default: from the '
                       f'file\'s metadata, else its output shapes): {", ".join(decoder_names())}')
    group.add_argument('--decoder-option', action='append', default=[], metavar='KEY=VALUE',
                       help='a decoder option, e.g. num_classes=80 layout=nchw; repeatable')
    group.add_argument('--labels', default='', help='labels file, one class name per line')
    group.add_argument('--score-threshold', type=float, default=None,
                       help="minimum score (default: the model's own: 0.25 for YOLO, 0.5 for "
                       'CenterFace)')
    group.add_argument('--threads', type=int, default=0,
                       help='inference threads (0: one per core)')
    pre = parser.add_argument_group(
        'pre-processing', "(pixel * scale - mean) / std per channel; each defaults to the model's "
        "own (its decoder family's: YOLO letterbox, pad 114, rgb, 1/255)")
    pre.add_argument('--scale', type=float, default=None, help='pixel scale, e.g. 0.00392157')
    pre.add_argument('--mean', type=three_numbers, default=None, metavar='R,G,B',
                     help='mean per channel, after scaling')
    pre.add_argument('--std', type=three_numbers, default=None, metavar='R,G,B',
                     help='standard deviation per channel, after scaling')
    pre.add_argument('--channel-order', choices=CHANNEL_ORDERS, default=None,
                     help='channel order the model takes')
    pre.add_argument('--resize', choices=RESIZE_MODES, default=None,
                     help='letterbox (keep the aspect ratio, pad) or stretch')
    pre.add_argument('--pad-value', type=int, default=None, help='letterbox padding, 0..255')


def three_numbers(text: str) -> Tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(','))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f'three numbers R,G,B expected, got {text!r}')
    return values


def preprocess_options(args: argparse.Namespace) -> Dict[str, object]:
    """Return the pre-processing fields given (the rest are the model's own)."""
    given = {'scale': args.scale, 'mean': args.mean, 'std': args.std,
             'channel_order': args.channel_order, 'resize': args.resize,
             'pad_value': args.pad_value}
    return {key: value for key, value in given.items() if value is not None}


def backend_options(threads: int, items: List[str]) -> Dict[str, object]:
    """``--threads`` (for onnxruntime) and ``--backend-option KEY=VALUE`` items as options."""
    return {'onnxruntime.intra_op_threads': threads, **parse_options(items)}


def pipeline_config(args: argparse.Namespace, input_size=None,
                    num_runtimes: int = 1, max_batch: int = 1) -> PipelineConfig:
    return PipelineConfig(
        model=args.model, model_name=args.model_name, backend=args.backend,
        backend_options=backend_options(args.threads, args.backend_option),
        decoder=args.decoder, decoder_options=parse_options(args.decoder_option),
        labels_file=args.labels, score_threshold=args.score_threshold,
        preprocess=preprocess_options(args), input_size=input_size, num_runtimes=num_runtimes,
        max_batch=max_batch)


def write_json(path: str, data) -> None:
    """Write a command's results to ``--json OUT`` when one was given."""
    if path:
        with open(path, 'w') as f:
            json.dump(data, f, indent=2)


def run(main: Callable[[Optional[List[str]]], int], argv: Optional[List[str]] = None) -> None:
    """Exit with ``main``'s code; a user's mistake prints one line, not a traceback."""
    try:
        code = main(argv)
    except InferError as exc:
        print(f'error: {exc}', file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def console_script(main: Callable[[Optional[List[str]]], int]) -> Callable[[], None]:
    """Wrap ``main`` as a console-script entry point that exits as :func:`run` does."""
    def entry() -> None:
        run(main)
    return entry


def command_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """Return the argument parser of command ``module``, described by its docstring's summary."""
    return argparse.ArgumentParser(prog=f'python -m {module}',
                                   description=doc.strip().splitlines()[0])
