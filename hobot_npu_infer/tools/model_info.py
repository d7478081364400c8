"""
What a model file holds: ``python -m hobot_npu_infer.tools.model_info FILE_OR_NAME``.

Lists every model in the file (packed NPU files hold several) with its inputs and outputs (name,
shape, dtype, layout) and batch. With ``--heads``, an ONNX file is split into a trunk and those
heads, and the trunk, the cut tensors and each part's share of the compute are shown too.
"""

import json
from typing import Dict, List, Optional

from hobot_npu_infer.core.backends import create_backend
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.models.builtin_models import resolve_model
from hobot_npu_infer.core.models.onnx_files import read_onnx
from hobot_npu_infer.core.multi_head.graph_split import compute_share, HeadSpec, split_model
from hobot_npu_infer.tools.cli import command_parser, console_script, size_argument


def parse_heads(text: str) -> List[HeadSpec]:
    """'faces=537,538,539;landmarks=540' -> head specs."""
    heads = []
    for part in filter(None, (p.strip() for p in text.split(';'))):
        name, sep, outputs = part.partition('=')
        if not sep or not name.strip() or not outputs.strip():
            raise ConfigError(f'--heads must look like name=out1,out2;name2=out3, got {part!r}')
        heads.append(HeadSpec(name.strip(), [o.strip() for o in outputs.split(',') if o.strip()]))
    return heads


def describe(args) -> Dict[str, object]:
    path = resolve_model(args.model).path
    models = create_backend(args.backend).load(path)
    info: Dict[str, object] = {'file': path, 'models': [{
        'name': m.name, 'batch': m.batch.describe(),
        'inputs': [spec_dict(s) for s in m.inputs],
        'outputs': [spec_dict(s) for s in m.outputs]} for m in models]}
    if args.heads:
        model = read_onnx(path)
        split = split_model(model, parse_heads(args.heads),
                            args.cut.split(',') if args.cut else None)
        w, h = args.input_size
        image = models[0].inputs[0]
        shape = [1, 3, h, w] if image.layout != 'NHWC' else [1, h, w, 3]
        shares = compute_share(model, split, {image.name: shape})
        info['split'] = {
            'trunk_nodes': len(split.trunk.graph.node) if split.trunk else 0,
            'cut_tensors': split.cut_tensors,
            'heads': {name: {'nodes': len(part.graph.node), 'inputs': split.head_inputs[name],
                             'outputs': [o.name for o in part.graph.output]}
                      for name, part in split.heads.items()},
            'compute_share': {k: round(v, 5) for k, v in shares.items()},
            'share_at': f'{w}x{h}'}
    return info


def spec_dict(spec) -> Dict[str, object]:
    return {'name': spec.name, 'shape': ['?' if d is None else d for d in spec.shape],
            'dtype': spec.dtype.name, 'layout': spec.layout}


def format_info(info: Dict[str, object]) -> str:
    lines = [f'file: {info["file"]}']
    for model in info['models']:
        lines.append(f'model {model["name"]} (batch {model["batch"]})')
        for kind in ('inputs', 'outputs'):
            for spec in model[kind]:
                dims = ','.join(str(d) for d in spec['shape'])
                lines.append(f'  {kind[:-1]:6} {spec["name"]} [{dims}] {spec["dtype"]}'
                             f'{" " + spec["layout"] if spec["layout"] else ""}')
    split = info.get('split')
    if split:
        shares = split['compute_share']
        lines.append(f'split (compute share at {split["share_at"]}):')
        lines.append(f'  trunk: {split["trunk_nodes"]} nodes, {shares["trunk"]:.1%} of the '
                     f'compute, outputs (cut tensors) {", ".join(split["cut_tensors"]) or "-"}')
        for name, head in split['heads'].items():
            lines.append(f'  head {name}: {head["nodes"]} nodes, {shares[name]:.1%}, reads '
                         f'{", ".join(head["inputs"])}, gives {", ".join(head["outputs"])}')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = command_parser('hobot_npu_infer.tools.model_info', __doc__)
    parser.add_argument('model', help='model file or built-in name')
    parser.add_argument('--backend', default='onnxruntime')
    parser.add_argument('--heads', default='', help="split into heads: 'faces=537,538,539;"
                        "landmarks=540' (ONNX)")
    parser.add_argument('--cut', default='', help='cut tensors, overriding the automatic split')
    parser.add_argument('--input-size', type=size_argument, default=(640, 480), metavar='WxH',
                        help='image size at which compute shares are counted')
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args(argv)
    info = describe(args)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


cli = console_script(main)


if __name__ == '__main__':
    cli()
