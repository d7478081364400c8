"""
An Ultralytics YOLOv8/YOLO11 detection checkpoint (.pt) in Rockchip rknn_model_zoo's ONNX layout.

Run by the Python of the Ultralytics environment (``make ultralytics``), never imported by the
package or by the tests' own interpreter::

    .venv-ultralytics/bin/python test/zoo_export.py .models/best.pt -o best_zoo.onnx \
        [--imgsz 640] [--opset 13] [--keep-stock stock.onnx]

It writes the model with the decode head cut off, three outputs per stride (8, 16, 32, in that
order)::

    strideS_box        [1, 4*reg_max, H, W]  DFL logits (reg_max 16: 64 channels), no softmax
    strideS_cls        [1, C, H, W]          class scores, sigmoid applied in the model
    strideS_score_sum  [1, 1, H, W]          clamp(sum over classes of cls, 0, 1)

which is what airockchip/ultralytics_yolov8's ``Detect.forward`` returns for
``export(format='rknn')``, and what hobot_npu_infer's ``rknn_yolov8`` decoder reads.

How: stock Ultralytics exports the ordinary ONNX (one output [1, 4+C, N] with DFL and decode
inside); the graph is then cut where the head's last box and class convolutions end, before the
reshape/concat that feeds the DFL softmax and the class sigmoid, found by graph structure, not by
node names. Sigmoid, ReduceSum and Clip are added as Rockchip's head does; everything after the
cut is removed. Ultralytics' metadata, which describes the stock output, is replaced by notes
(``layout``, ``strides``, ``num_classes``). The script then checks the cut numerically: on a
seeded random input, DFL-decoding the 9 outputs in numpy must give the stock export's boxes and
scores for every anchor. It refuses models without DFL (reg_max 1) and tasks other than detect.
"""

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

MAX_BOX_ERROR = 1e-2  # pixels, between the cut graph decoded here and the stock export
MAX_SCORE_ERROR = 1e-5


# --- stock export --------------------------------------------------------------------------------

def stock_export(pt_path: str, imgsz: int, opset: int, workdir: str) -> str:
    """Export ``pt_path`` with Ultralytics' own ONNX export (fixed size, fp32, no NMS)."""
    os.environ.setdefault('YOLO_AUTOINSTALL', 'false')  # never pip-install behind our back
    os.environ.setdefault('YOLO_OFFLINE', 'true')
    from ultralytics import YOLO
    local = os.path.join(workdir, os.path.basename(pt_path))
    shutil.copy(pt_path, local)  # the export is written beside the .pt
    model = YOLO(local)
    if model.task != 'detect':
        sys.exit(f'{pt_path} is a {model.task!r} model; only detect models are handled')
    out = model.export(format='onnx', imgsz=imgsz, opset=opset, simplify=True, dynamic=False,
                       nms=False, batch=1)
    return str(out)


# --- graph surgery -------------------------------------------------------------------------------

class Graph:
    """Producers and consumers of each tensor of an ONNX graph."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.g = model.graph
        self.producer = {o: n for n in self.g.node for o in n.output}

    def conv_before(self, name: str) -> str:
        """Walk back through Reshape/Flatten to the Conv that produced ``name``; its output."""
        node = self.producer.get(name)
        while node is not None and node.op_type in ('Reshape', 'Flatten'):
            name = node.input[0]
            node = self.producer.get(name)
        if node is None or node.op_type != 'Conv':
            raise SystemExit(f'head cut: expected a Conv before {name}, found '
                             f'{node.op_type if node is not None else "a graph input"}')
        return name

    def concat_before(self, name: str, through=('Reshape', 'Transpose')) -> onnx.NodeProto:
        """Walk back through ``through`` to the Concat that produced ``name``."""
        node = self.producer.get(name)
        while node is not None and node.op_type in through:
            node = self.producer.get(node.input[0])
        if node is None or node.op_type != 'Concat':
            raise SystemExit(f'head cut: expected a Concat before {name}')
        return node


def find_head(graph: Graph):
    """Return (box conv outputs, class conv outputs) of the Detect head, strides unsorted."""
    # the DFL softmax: Softmax(Transpose(Reshape(Concat(Reshape(Conv_k))))); attention blocks
    # (YOLO11's C2PSA) have softmaxes of their own, over no such concatenation
    dfl = []
    for node in graph.g.node:
        if node.op_type != 'Softmax':
            continue
        try:
            dfl.append([graph.conv_before(i)
                        for i in graph.concat_before(node.input[0]).input])
        except SystemExit:
            continue
    if len(dfl) != 1:
        raise SystemExit(f'head cut: expected one DFL Softmax over the per-stride box convs, '
                         f'found {len(dfl)} (a model without DFL, reg_max=1, has no box '
                         f'distribution to cut out)')
    boxes = dfl[0]
    # the class scores: Sigmoid(Concat(Reshape(Conv_k))); the SiLU sigmoids take a Conv directly
    classes = None
    for node in graph.g.node:
        if node.op_type != 'Sigmoid':
            continue
        src = graph.producer.get(node.input[0])
        if src is not None and src.op_type == 'Concat':
            try:
                candidate = [graph.conv_before(i) for i in src.input]
            except SystemExit:
                continue
            if classes is not None:
                raise SystemExit('head cut: two class-score sigmoids over concatenations')
            classes = candidate
    if classes is None:
        raise SystemExit('head cut: found no class-score Sigmoid over a concatenation of convs')
    if len(boxes) != len(classes):
        raise SystemExit(f'head cut: {len(boxes)} box levels but {len(classes)} class levels')
    return boxes, classes


def shapes_of(model: onnx.ModelProto, names):
    """Return the static shape of each tensor of ``names``, by ONNX shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model)
    known = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
             for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    missing = [n for n in names if n not in known or not all(known[n])]
    if missing:
        raise SystemExit(f'head cut: no static shape for {missing}')
    return {n: known[n] for n in names}


def rename_tensor(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
        node.input[:] = [new if i == old else i for i in node.input]


def add_score_sum(g: onnx.GraphProto, stride: int, cls: str, opset: int, out: str) -> None:
    """Add ``out = clip(reduce_sum(cls, axis 1, keepdims), 0, 1)``, as Rockchip's head does."""
    total = f'stride{stride}_sum'
    if opset >= 13:
        axes = f'zoo/stride{stride}/axes'
        g.initializer.append(numpy_helper.from_array(np.array([1], np.int64), axes))
        g.node.append(helper.make_node('ReduceSum', [cls, axes], [total], keepdims=1,
                                       name=f'zoo/stride{stride}/ReduceSum'))
    else:
        g.node.append(helper.make_node('ReduceSum', [cls], [total], axes=[1], keepdims=1,
                                       name=f'zoo/stride{stride}/ReduceSum'))
    lo, hi = f'zoo/stride{stride}/min', f'zoo/stride{stride}/max'
    g.initializer.extend([numpy_helper.from_array(np.array(0, np.float32), lo),
                          numpy_helper.from_array(np.array(1, np.float32), hi)])
    g.node.append(helper.make_node('Clip', [total, lo, hi], [out],
                                   name=f'zoo/stride{stride}/Clip'))


def prune(g: onnx.GraphProto) -> None:
    """Remove every node and initialiser the graph's outputs do not need."""
    producer = {o: n for n in g.node for o in n.output}
    needed, stack = set(), [o.name for o in g.output]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        node = producer.get(name)
        if node is not None:
            stack.extend(i for i in node.input if i)
    keep = [node for node in g.node if any(o in needed for o in node.output)]
    del g.node[:]
    g.node.extend(keep)
    used = {i for n in g.node for i in n.input}
    inits = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(inits)
    del g.value_info[:]


def cut_head(model: onnx.ModelProto, reg_max: int = 16) -> onnx.ModelProto:
    """Cut the decode head off the stock export: 3 outputs per stride, finest grid first."""
    graph = Graph(model)
    boxes, classes = find_head(graph)
    shape = shapes_of(model, boxes + classes)
    levels = []  # (grid h, grid w, box tensor, class tensor)
    for b in boxes:
        c = [c for c in classes if shape[c][2:] == shape[b][2:]]
        if len(c) != 1 or shape[b][1] != 4 * reg_max:
            raise SystemExit(f'head cut: box {b} {shape[b]} pairs with no single class map')
        levels.append((shape[b][2], shape[b][3], b, c[0]))
    levels.sort(key=lambda lv: -lv[0] * lv[1])  # finest grid (stride 8) first
    image = model.graph.input[0]
    in_h = image.type.tensor_type.shape.dim[2].dim_value
    opset = next(o.version for o in model.opset_import if o.domain in ('', 'ai.onnx'))

    g = model.graph
    outputs = []
    for h, w, box, cls in levels:
        stride = in_h // h
        names = {k: f'stride{stride}_{k}' for k in ('box', 'cls', 'score_sum')}
        rename_tensor(g, box, names['box'])
        rename_tensor(g, cls, f'stride{stride}_cls_logits')
        g.node.append(helper.make_node('Sigmoid', [f'stride{stride}_cls_logits'], [names['cls']],
                                       name=f'zoo/stride{stride}/Sigmoid'))
        add_score_sum(g, stride, names['cls'], opset, names['score_sum'])
        channels = {'box': 4 * reg_max, 'cls': shape[cls][1], 'score_sum': 1}
        outputs += [helper.make_tensor_value_info(names[k], TensorProto.FLOAT,
                                                  [1, channels[k], h, w])
                    for k in ('box', 'cls', 'score_sum')]
    del g.output[:]
    g.output.extend(outputs)
    prune(g)
    # Ultralytics' metadata would describe the stock [1,4+C,N] output (and make hobot_npu_infer
    # pick the yolov8 decoder); drop it, note the layout.
    del model.metadata_props[:]
    for k, v in (('layout', 'rknn_model_zoo yolov8: per stride box[1,64,H,W], cls[1,C,H,W] '
                            '(sigmoid), score_sum[1,1,H,W]'),
                 ('strides', ','.join(str(in_h // lv[0]) for lv in levels)),
                 ('num_classes', str(shape[levels[0][3]][1]))):
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    return model


# --- numeric check -------------------------------------------------------------------------------

def decode_zoo(outputs, in_size, reg_max=16):
    """Decode the 9 zoo outputs to (N, 4) xywh boxes and (N, C) scores, in Ultralytics' order."""
    boxes, scores = [], []
    for k in range(0, len(outputs), 3):
        box, cls, score_sum = outputs[k:k + 3]
        _, _, h, w = box.shape
        stride = in_size // h
        logits = box[0].reshape(4, reg_max, h * w).astype(np.float64)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        ltrb = (p * np.arange(reg_max)[None, :, None]).sum(1) / p.sum(1)  # (4, HW)
        gy, gx = np.mgrid[0:h, 0:w]
        cx, cy = gx.ravel() + 0.5, gy.ravel() + 0.5
        x1, y1, x2, y2 = cx - ltrb[0], cy - ltrb[1], cx + ltrb[2], cy + ltrb[3]
        boxes.append(np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1) * stride)
        scores.append(cls[0].reshape(cls.shape[1], -1).T)
        expected_sum = np.clip(cls[0].sum(0).ravel(), 0, 1)
        if not np.allclose(score_sum[0, 0].ravel(), expected_sum, atol=1e-6):
            raise SystemExit(f'stride {stride}: score_sum is not the clipped sum of cls')
    return np.concatenate(boxes), np.concatenate(scores)


def check(stock_path: str, zoo_path: str, imgsz: int) -> None:
    """Check that the cut graph, decoded here, gives the stock export's every anchor."""
    import onnxruntime as ort
    x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    stock = ort.InferenceSession(stock_path, providers=['CPUExecutionProvider'])
    zoo = ort.InferenceSession(zoo_path, providers=['CPUExecutionProvider'])
    ref = stock.run(None, {stock.get_inputs()[0].name: x})[0][0].T  # (N, 4+C)
    outs = zoo.run(None, {zoo.get_inputs()[0].name: x})
    boxes, scores = decode_zoo(outs, imgsz)
    box_err = np.abs(boxes - ref[:, :4]).max()
    score_err = np.abs(scores - ref[:, 4:]).max()
    print(f'check on a random input: {len(ref)} anchors, max |box - stock| {box_err:.2e} px, '
          f'max |score - stock| {score_err:.2e}')
    if box_err > MAX_BOX_ERROR or score_err > MAX_SCORE_ERROR:
        raise SystemExit('the cut graph does not reproduce the stock export')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('pt', help='an Ultralytics detection checkpoint (.pt)')
    parser.add_argument('-o', '--output', required=True, help='the .onnx file to write')
    parser.add_argument('--imgsz', type=int, default=640)
    parser.add_argument('--opset', type=int, default=13)
    parser.add_argument('--keep-stock', default='', help='also keep the stock export here')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='zoo-export-') as work:
        stock_path = stock_export(args.pt, args.imgsz, args.opset, work)
        model = cut_head(onnx.load(stock_path))
        onnx.save(model, args.output)
        check(stock_path, args.output, args.imgsz)
        if args.keep_stock:
            shutil.copy(stock_path, args.keep_stock)
    m = onnx.load(args.output, load_external_data=False)
    print(f'wrote {args.output} ({os.path.getsize(args.output) / 1e6:.1f} MB), opset '
          f'{m.opset_import[0].version}')
    for t in list(m.graph.input) + list(m.graph.output):
        kind = 'input ' if t in m.graph.input else 'output'
        print(f'  {kind} {t.name} {[d.dim_value for d in t.type.tensor_type.shape.dim]}')


if __name__ == '__main__':
    main()
