"""
A fixed-batch-1 ONNX export turned into a dynamic-batch one, where its graph allows it.

Ultralytics exports (and many torch.onnx exports) fix the batch at 1 unless exported with a
dynamic batch, so a node batching several cameras would run one image per run. Most such graphs
are per-image computations whose only tie to batch 1 is the inputs' declared shape and a few
shape constants (``Reshape(x, [1, C, -1])``). The rewrite finds those from shape inference,
never from node names: the graph is inferred at batch 1 and at batch :data:`PROBE`, and a
dimension that is 1 at the first and PROBE at the second carries the batch. A rewrite is used
only after onnxruntime ran it on a stacked batch and matched the original image by image.
"""

from dataclasses import dataclass
import os
from typing import Dict, List, Optional, Tuple

from hobot_npu_infer.core.errors import one_line
from hobot_npu_infer.core.models.builtin_models import atomic_write, file_digest
from hobot_npu_infer.core.models.onnx_files import graph_inputs, read_onnx
import numpy as np

BATCH = 'batch'  # the symbolic batch dimension of a rewritten model
PROBE = 7  # the batch shapes are inferred at besides 1: prime, unlike any real axis length
VERIFY_INPUTS = 4  # distinct inputs the rewrite is checked on, one batch of this size
REWRITE_VERSION = 1  # part of the cache name: a changed rewrite never reuses an old verdict
NOTE_KEY = 'hobot_npu_infer.batchable'  # metadata of a rewritten file: what it was checked on
# Tolerance relative to each output's scale (max |value|): a batch may sum in another order
# (GEMM blocking changes with the batch), float32 rounding then differs by a few ulps.
TOLERANCE = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 1e-5,
             np.dtype(np.float64): 1e-9}
UNKNOWN_SIZE = 256  # a non-batch input dimension left dynamic is verified at this size

Shape = Tuple[Optional[int], ...]
Shapes = Dict[str, Shape]


class NotBatchable(Exception):
    """The graph ties its computation to batch 1; the message says where, in one line."""


@dataclass(frozen=True)
class BatchableModel:
    """The file to load and one line on it ('' when the source is used as it is)."""

    path: str
    note: str = ''
    rewritten: bool = False


# -- the rewrite ---------------------------------------------------------------------------


def batch_one_inputs(model) -> List[str]:
    """Return the names of the graph's inputs (initialisers aside) declared at batch 1."""
    names = []
    for value in graph_inputs(model):
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField('dim_value') and dims[0].dim_value == 1:
            names.append(value.name)
    return names


def _dims(value) -> Optional[Shape]:
    tensor = value.type.tensor_type
    if not tensor.HasField('shape'):
        return None
    return tuple(d.dim_value if d.HasField('dim_value') else None for d in tensor.shape.dim)


def _infer(model, batch: int, strict: bool = False) -> Shapes:
    """Return every tensor's shape with the inputs at ``batch``; stale shapes are not read."""
    import onnx
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    graph = probe.graph
    del graph.value_info[:]
    for output in graph.output:
        output.type.tensor_type.ClearField('shape')
    batched = set(batch_one_inputs(model))
    for value in graph.input:
        if value.name in batched:
            value.type.tensor_type.shape.dim[0].dim_value = batch
    inferred = onnx.shape_inference.infer_shapes(probe, strict_mode=strict, data_prop=True)
    shapes: Shapes = {init.name: tuple(init.dims) for init in inferred.graph.initializer}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = _dims(value)
        if dims is not None:
            shapes[value.name] = dims
    return shapes


def _leads_batch(one: Optional[Shape], many: Optional[Shape]) -> bool:
    """Whether a tensor's first axis is the batch (1, then PROBE) and nothing else changes."""
    return (one is not None and many is not None and len(one) == len(many) >= 1
            and one[0] == 1 and many[0] == PROBE and one[1:] == many[1:])


def _changes(one: Optional[Shape], many: Optional[Shape]) -> bool:
    return one is not None and many is not None and one != many


def _constant(graph, name: str) -> Optional[np.ndarray]:
    """Return the value of an initialiser or a Constant node's output; None when computed."""
    from onnx import numpy_helper
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == 'Constant' and node.output[0] == name:
            for attribute in node.attribute:
                if attribute.name == 'value':
                    return numpy_helper.to_array(attribute.t)
                if attribute.name == 'value_ints':
                    return np.array(attribute.ints, np.int64)
    return None


def _attribute(node, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


def _unique(graph, base: str) -> str:
    taken = {init.name for init in graph.initializer} | {v.name for v in graph.input} | {
        out for node in graph.node for out in node.output}
    name, n = base, 0
    while name in taken:
        n += 1
        name = f'{base}_{n}'
    return name


def _free_reshapes(graph, one: Shapes, many: Shapes) -> int:
    """
    Point each Reshape of a batch-led tensor to a constant shape leading with 1 at a 0 instead.

    A Reshape's 0 copies its input's dimension, so ``[1, C, -1]`` becomes ``[0, C, -1]``; the
    row-major order keeps each image's elements together, so each image is reshaped as before.
    """
    from onnx import numpy_helper
    changed, freed_names = 0, {}
    for node in graph.node:
        if node.op_type != 'Reshape' or len(node.input) < 2 or _attribute(node, 'allowzero', 0):
            continue
        data, shape = node.input[0], node.input[1]
        target = _constant(graph, shape)
        if (target is None or target.ndim != 1 or not target.size or target[0] != 1
                or not _leads_batch(one.get(data), many.get(data))):
            continue
        if shape not in freed_names:  # one freed copy of a shape several Reshapes share
            freed = target.astype(np.int64).copy()
            freed[0] = 0
            freed_names[shape] = _unique(graph, f'{shape}_batch')
            graph.initializer.append(numpy_helper.from_array(freed, freed_names[shape]))
        node.input[1] = freed_names[shape]
        changed += 1
    return changed


def _expand_to_batch(model, one: Shapes, many: Shapes) -> int:
    """
    Expand batch-1 constants concatenated with batched tensors (a class token, a query set).

    Concat does not broadcast, so such an operand is expanded to the batch of its neighbour:
    ``Expand(t, concat(Shape(x)[0:1], ones))``.
    """
    from onnx import helper, numpy_helper
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), 0)
    if opset < 10:  # Slice takes its bounds as inputs from opset 10
        return 0
    nodes, changed = [], 0
    for node in graph.node:
        if node.op_type == 'Concat':
            operands = [(one.get(name), many.get(name)) for name in node.input]
            rank = next((len(s) for s, _ in operands if s is not None), 0)
            axis = _attribute(node, 'axis', 0) % rank if rank else 0
            leader = next((name for name, (a, b) in zip(node.input, operands)
                           if _leads_batch(a, b)), None)
            if axis and leader:
                for index, (name, (a, b)) in enumerate(zip(node.input, operands)):
                    if a is None or b is None or a != b or not a or a[0] != 1:
                        continue
                    base = _unique(graph, f'{name}_to_batch{changed}')  # unique in this pass
                    ones = numpy_helper.from_array(np.ones(len(a) - 1, np.int64), f'{base}_ones')
                    first = numpy_helper.from_array(np.array([0], np.int64), f'{base}_first')
                    second = numpy_helper.from_array(np.array([1], np.int64), f'{base}_second')
                    graph.initializer.extend([ones, first, second])
                    nodes += [
                        helper.make_node('Shape', [leader], [f'{base}_shape']),
                        helper.make_node('Slice', [f'{base}_shape', first.name, second.name],
                                         [f'{base}_batch']),
                        helper.make_node('Concat', [f'{base}_batch', ones.name],
                                         [f'{base}_target'], axis=0),
                        helper.make_node('Expand', [name, f'{base}_target'], [base])]
                    node.input[index] = base
                    changed += 1
        nodes.append(node)
    if changed:
        del graph.node[:]
        graph.node.extend(nodes)
    return changed


def _drop_displaced(graph, shapes) -> None:
    """Drop the Reshapes' original shape constants no node uses any more."""
    used = {name for node in graph.node for name in node.input} | {
        v.name for v in [*graph.input, *graph.output]}
    kept = [init for init in graph.initializer if init.name in used or init.name not in shapes]
    if len(kept) < len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(kept)


def _describe(shape: Shape) -> str:
    return '[' + ','.join('?' if d is None else str(d) for d in shape) + ']'


def _check_flow(graph, one: Shapes, many: Shapes) -> None:
    """Raise NotBatchable where a node merges the batch into another axis or drops it."""
    for node in graph.node:
        if node.op_type in ('Shape', 'Size'):  # their values, not their shapes, hold the batch
            continue
        if not any(_changes(one.get(name), many.get(name)) for name in node.input if name):
            continue
        outputs = [(one.get(name), many.get(name)) for name in node.output if name]
        if any(a is None or b is None or len(a) != len(b) or None in a or None in b
               for a, b in outputs):
            continue  # shapes not inferred here: the verification decides
        what = f'{node.op_type} node {node.name or node.output[0]!r}'
        for a, b in outputs:
            for axis, (x, y) in enumerate(zip(a, b)):
                if x != y and (x, y) != (1, PROBE):  # an axis of its own may move (Transpose)
                    how = 'merges the batch into' if y == x * PROBE else 'mixes the batch with'
                    raise NotBatchable(f'{what} {how} axis {axis} ({_describe(a)} at batch 1, '
                                       f'{_describe(b)} at batch {PROBE})')
        if all(a == b for a, b in outputs):
            raise NotBatchable(f'{what} drops the batch (its output is {_describe(outputs[0][0])} '
                               f'whatever the batch)')


def make_batchable(model):
    """
    Return a copy of ``model`` with its batch-1 inputs and its outputs at a symbolic batch.

    Raises NotBatchable, with the reason, when the graph ties its computation to batch 1 in a
    way the rewrite does not undo. The result still has to pass :func:`verify_batchable`.
    """
    import onnx
    graph = model.graph
    inputs = batch_one_inputs(model)
    others = [v.name for v in graph_inputs(model) if v.name not in inputs]
    if not inputs:
        raise NotBatchable('no input is fixed at batch 1')
    if others:
        raise NotBatchable(f'input {others[0]!r} is not fixed at batch 1')
    if any(init.data_location == onnx.TensorProto.EXTERNAL for init in graph.initializer):
        raise NotBatchable('its weights are in external data files')
    subgraphs = [n.op_type for n in graph.node
                 if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                        for a in n.attribute)]
    if subgraphs:
        raise NotBatchable(f'it has control flow ({subgraphs[0]}), which is not rewritten')
    work = onnx.ModelProto()
    work.CopyFrom(model)
    del work.graph.value_info[:]  # shapes at batch 1, stale once the batch is dynamic
    for _ in range(len(graph.node) + 1):  # each pass frees the batch further down the graph
        one, many = _infer(work, 1), _infer(work, PROBE)
        if not _free_reshapes(work.graph, one, many) and not _expand_to_batch(work, one, many):
            break
    _check_flow(work.graph, one, many)
    for output in work.graph.output:
        a, b = one.get(output.name), many.get(output.name)
        if a is not None and b is not None and not _leads_batch(a, b):
            raise NotBatchable(f'output {output.name!r} does not follow the batch '
                               f'({_describe(a)} at batch 1, {_describe(b)} at batch {PROBE})')
    try:
        _infer(work, PROBE, strict=True)
    except onnx.shape_inference.InferenceError as exc:
        try:
            _infer(work, 1, strict=True)
        except onnx.shape_inference.InferenceError:
            pass  # inference cannot follow this graph at all: the verification decides
        else:
            text = ' '.join(str(exc).split())
            text = text[max(text.find('(op_type'), 0):]  # from the node onwards
            raise NotBatchable(f'its shapes do not fit at batch {PROBE}: {text[:200]}') from None
    _drop_displaced(work.graph, {n.input[1] for n in graph.node if n.op_type == 'Reshape'})
    for value in [*(v for v in work.graph.input if v.name in inputs), *work.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_param = BATCH
    return work


# -- the verification ----------------------------------------------------------------------


def _session(data: bytes):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(data, sess_options=options, providers=['CPUExecutionProvider'])


def _sample(spec, seed: int) -> np.ndarray:
    """Return one image's input: random values of the input's type, batch 1."""
    types = {'tensor(float)': np.float32, 'tensor(float16)': np.float16,
             'tensor(double)': np.float64, 'tensor(uint8)': np.uint8, 'tensor(int8)': np.int8}
    dtype = np.dtype(types.get(spec.type, np.float32))
    shape = [1] + [d if isinstance(d, int) and d > 0 else UNKNOWN_SIZE for d in spec.shape[1:]]
    rng = np.random.default_rng(seed)
    if dtype.kind == 'f':
        return rng.random(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def _compare(name: str, got: np.ndarray, want: np.ndarray) -> float:
    """Return the max abs difference; NotBatchable beyond the dtype's tolerance."""
    if got.shape != want.shape or got.dtype != want.dtype:
        raise NotBatchable(f'output {name!r} is {got.dtype}{list(got.shape)} per image '
                           f'batched, {want.dtype}{list(want.shape)} alone')
    if want.dtype.kind not in 'fc':
        if not np.array_equal(got, want):
            raise NotBatchable(f'output {name!r} differs batched from one image at a time')
        return 0.0
    finite = np.isfinite(want)
    if not np.array_equal(finite, np.isfinite(got)):
        raise NotBatchable(f'output {name!r} is not finite at the same places batched')
    if not finite.any():
        return 0.0
    diff = float(np.max(np.abs(got[finite].astype(np.float64) - want[finite])))
    scale = float(np.max(np.abs(want[finite]))) or 1.0
    if diff > TOLERANCE.get(want.dtype, 1e-5) * scale:
        raise NotBatchable(f'output {name!r} differs batched from one image at a time by '
                           f'{diff:.3g} (scale {scale:.3g})')
    return diff


def verify_batchable(original, rewritten, count: int = VERIFY_INPUTS) -> Dict[str, float]:
    """
    Return the max abs difference per output between the rewrite, batched, and the original.

    The original runs ``count`` different inputs one at a time; the rewrite runs them stacked as
    one batch, and the first alone. Raises NotBatchable when an output differs beyond the
    tolerance or the rewrite does not run.
    """
    reference = _session(original.SerializeToString())
    batched = _session(rewritten.SerializeToString())
    specs = reference.get_inputs()
    samples = [{spec.name: _sample(spec, seed * len(specs) + i) for i, spec in enumerate(specs)}
               for seed in range(count)]
    names = [o.name for o in reference.get_outputs()]
    wanted = [reference.run(names, sample) for sample in samples]
    stacked = {spec.name: np.concatenate([s[spec.name] for s in samples]) for spec in specs}
    worst = dict.fromkeys(names, 0.0)
    for size, inputs in ((count, stacked), (1, samples[0])):
        try:
            outputs = batched.run(names, inputs)
        except Exception as exc:  # noqa: BLE001 (onnxruntime raises several pybind types)
            text = ' '.join(str(exc).split())
            raise NotBatchable(f'the rewrite does not run at batch {size}: {text[:200]}') from None
        for k, (name, got) in enumerate(zip(names, outputs)):
            if got.ndim == 0 or got.shape[0] != size:
                raise NotBatchable(f'output {name!r} has shape {list(got.shape)} at batch {size}')
            for index in range(size):
                want = np.asarray(wanted[index][k])
                worst[name] = max(worst[name], _compare(name, got[index:index + 1], want))
    return worst


# -- the cached copy a pipeline loads ------------------------------------------------------


def refusal_note(path: str, reason: str, max_batch: int) -> str:
    """Return the one start-up line for a batch-1 file the rewrite refused, with the fix."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return (f'{path} is fixed at batch 1 and runs one image per run, not batches of up to '
            f'{max_batch} ({reason}); re-export it with a dynamic batch: '
            f'yolo export model={stem}.pt format=onnx dynamic=True (or '
            f'torch.onnx.export(..., dynamic_axes=...) for a model not from Ultralytics)')


def rewritten_note(count: int = VERIFY_INPUTS) -> str:
    return (f'made batchable: batch 1 export rewritten to a dynamic batch, verified on {count} '
            f'inputs')


def batchable_model(path: str, cache_dir: str, max_batch: int) -> BatchableModel:
    """
    Return the file to load for batches of up to ``max_batch``: a batch-1 ONNX file rewritten.

    The verified rewrite is cached under ``cache_dir``, keyed by the source's digest, as is a
    refusal's reason, so each file is rewritten and checked once. Any other file (not ONNX,
    dynamic already, a compiled batch above 1), or ``max_batch`` 1, is loaded as it is.
    """
    if max_batch <= 1 or os.path.splitext(path)[1].lower() != '.onnx':
        return BatchableModel(path)
    model = read_onnx(path, load_external_data=False)
    inputs = graph_inputs(model)
    if not inputs or inputs[0].name not in batch_one_inputs(model):
        return BatchableModel(path)
    stem, digest = os.path.splitext(os.path.basename(path))[0], file_digest(path)
    base = os.path.join(cache_dir, f'{stem}-batchable-v{REWRITE_VERSION}-{digest}')
    cached, refused = f'{base}.onnx', f'{base}.refused'
    if os.path.isfile(cached):
        return BatchableModel(cached, rewritten_note(), True)
    if os.path.isfile(refused):
        with open(refused) as f:
            return BatchableModel(path, refusal_note(path, f.read().strip(), max_batch))
    try:
        source = read_onnx(path)
        rewritten = make_batchable(source)
        worst = verify_batchable(source, rewritten)
    except NotBatchable as exc:
        reason = str(exc)
        _try_write(refused, reason.encode())
        return BatchableModel(path, refusal_note(path, reason, max_batch))
    except Exception as exc:  # noqa: BLE001 (onnx, onnxruntime: the file loads as it is)
        return BatchableModel(path, refusal_note(path, f'the rewrite failed: {one_line(exc)}',
                                                 max_batch))
    entry = rewritten.metadata_props.add()
    entry.key, entry.value = NOTE_KEY, (
        f'{rewritten_note()} from {os.path.basename(path)} (sha256 {digest}); max '
        f'abs difference per output: ' + ', '.join(f'{k} {v:.3g}' for k, v in worst.items()))
    if not _try_write(cached, rewritten.SerializeToString()):
        return BatchableModel(path, refusal_note(path, f'cannot write {cached}', max_batch))
    return BatchableModel(cached, rewritten_note(), True)


def _try_write(path: str, data: bytes) -> bool:
    try:
        atomic_write(path, data)
    except OSError:
        return False
    return True
