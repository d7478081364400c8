"""
Split one multi-output ONNX model into a shared trunk and one sub-graph per head.

A packed NPU file holds several compiled models; running the trunk once and then only the heads
a frame needs does the shared work once while the results stay those of the whole model.
"""

from collections import Counter
from dataclasses import dataclass
import math
import os
from typing import Dict, Iterable, List, Optional, Set, Tuple

from hobot_npu_infer.core.errors import BackendError, ConfigError
import numpy as np
import onnx

TRUNK = 'trunk'
_MAC_OPS = ('Conv', 'ConvTranspose', 'Gemm', 'MatMul')


@dataclass
class HeadSpec:
    """A named group of the model's graph outputs, computed and deployed together."""

    name: str
    outputs: List[str]


@dataclass
class SplitModel:
    """The parts, and the tensor names that chain them back into the whole model."""

    trunk: Optional[onnx.ModelProto]  # None when the heads share no node
    heads: Dict[str, onnx.ModelProto]
    cut_tensors: List[str]  # trunk outputs, read by the heads
    head_inputs: Dict[str, List[str]]  # per head: the cut tensors, then graph inputs, it reads
    original_inputs: List[str]

    def parts(self) -> Dict[str, onnx.ModelProto]:
        """Trunk (when there is one) then heads, by the names their files and shares go by."""
        parts = {} if self.trunk is None else {TRUNK: self.trunk}
        parts.update(self.heads)
        return parts


def _subgraphs(node: onnx.NodeProto) -> Iterable[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def _outer_names(graph: onnx.GraphProto) -> Set[str]:
    """Tensors a body (If, Loop, Scan) reads from the enclosing graph without naming them."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    used = {v.name for v in graph.output}
    for node in graph.node:
        defined.update(node.output)
        used.update(_node_inputs(node))
    return used - defined


def _node_inputs(node: onnx.NodeProto) -> List[str]:
    """Explicit inputs and those its bodies read implicitly: both must be computed first."""
    names = [name for name in node.input if name]
    for graph in _subgraphs(node):
        names.extend(sorted(_outer_names(graph)))
    return names


class _Topology:
    """Who produces and who reads each tensor of a model's main graph."""

    def __init__(self, model: onnx.ModelProto):
        graph = model.graph
        self.model = model
        self.nodes = list(graph.node)
        self.inputs_of = [_node_inputs(node) for node in self.nodes]
        self.producer = {name: i for i, node in enumerate(self.nodes)
                         for name in node.output if name}
        self.weights = {t.name for t in graph.initializer}
        # Old exporters list weights as graph inputs too; they stay weights.
        self.graph_inputs = [v.name for v in graph.input if v.name not in self.weights]
        self.graph_outputs = [v.name for v in graph.output]

    def ancestors(self, targets: Iterable[str], stop: Set[str]) -> Set[int]:
        """
        Return the indices of the nodes needed to compute ``targets``.

        Computed from the tensors in ``stop``.
        """
        found: Set[int] = set()
        pending = [name for name in targets if name not in stop]
        while pending:
            index = self.producer.get(pending.pop())
            if index is None or index in found:
                continue
            found.add(index)
            pending.extend(name for name in self.inputs_of[index] if name not in stop)
        return found

    def reads(self, nodes: Iterable[int]) -> Set[str]:
        return {name for i in nodes for name in self.inputs_of[i]}


def _check_heads(heads: List[HeadSpec], graph_outputs: List[str]) -> None:
    if not heads:
        raise ConfigError('split needs at least one head')
    owner: Dict[str, str] = {}
    names: Set[str] = set()
    for head in heads:
        if not head.name or head.name == TRUNK or os.path.basename(head.name) != head.name \
                or head.name in ('.', '..'):
            raise ConfigError(f'head name {head.name!r} must be a plain file name other than '
                              f'{TRUNK!r}')
        if head.name in names:
            raise ConfigError(f'head name {head.name!r} is used twice')
        names.add(head.name)
        if not head.outputs:
            raise ConfigError(f'head {head.name!r} names no outputs')
        for output in head.outputs:
            if output not in graph_outputs:
                raise ConfigError(f'head {head.name!r} output {output!r} is not an output of the '
                                  f'model (outputs: {", ".join(graph_outputs)})')
            if output in owner:
                raise ConfigError(f'output {output!r} is in heads {owner[output]!r} and '
                                  f'{head.name!r}; each output belongs to one head')
            owner[output] = head.name


def _automatic_cuts(topo: _Topology, heads: List[HeadSpec]) -> List[str]:
    """Cut where work shared by several heads hands over to work only one head needs."""
    stop = set(topo.graph_inputs)
    uses = Counter(i for head in heads for i in topo.ancestors(head.outputs, stop))
    trunk = {i for i, count in uses.items() if count > 1}
    handed_over = topo.reads(i for i in uses if i not in trunk)
    handed_over.update(output for head in heads for output in head.outputs)
    return [name for i in sorted(trunk) for name in topo.nodes[i].output if name in handed_over]


def _checked_cuts(topo: _Topology, cut_tensors: List[str]) -> List[str]:
    for name in cut_tensors:
        if cut_tensors.count(name) > 1:
            raise ConfigError(f'cut tensor {name!r} is named twice')
        if name in topo.producer:
            continue
        if name in topo.weights or name in topo.graph_inputs:
            raise ConfigError(f'cut tensor {name!r} is a graph input or weight; '
                              f'cut tensors must be computed by a node')
        raise ConfigError(f'unknown cut tensor {name!r}: no node of the model computes it')
    return list(cut_tensors)


def _check_separated(topo: _Topology, head: HeadSpec, nodes: Set[int], trunk: Set[int],
                     cuts: Set[str]) -> None:
    """
    Check that a head does not reach past the cut.

    If it did, it would recompute trunk work, or read a trunk tensor the trunk does not output.
    """
    shared = nodes & trunk
    if not shared:
        return
    for name in list(head.outputs) + sorted(topo.reads(nodes - trunk)):
        if name not in cuts and topo.producer.get(name) in shared:
            raise ConfigError(f'cut tensors do not separate head {head.name!r} from the graph '
                              f'inputs: it needs {name!r}, computed upstream of a cut but not cut')


def _known_types(model: onnx.ModelProto) -> Dict[str, onnx.ValueInfoProto]:
    """
    Return the declared and inferred types of every tensor.

    Declared outputs keep their symbolic dims.
    """
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v for v in inferred.graph.value_info}
    types.update((v.name, v) for v in model.graph.input)
    types.update((v.name, v) for v in model.graph.output)
    return types


def _typed(types: Dict[str, onnx.ValueInfoProto], name: str) -> onnx.ValueInfoProto:
    if name not in types:
        raise ConfigError(f'cannot tell the type of tensor {name!r}: shape inference did not '
                          f'reach it; cut at other tensors')
    return types[name]


def _part(topo: _Topology, types: Dict[str, onnx.ValueInfoProto], part_name: str,
          nodes: Set[int], inputs: List[str], outputs: List[str]) -> onnx.ModelProto:
    model = topo.model
    reads = topo.reads(nodes)
    inner = {name for i in nodes for name in topo.nodes[i].output} - set(outputs)
    graph = onnx.helper.make_graph(
        [topo.nodes[i] for i in sorted(nodes)], f'{model.graph.name}/{part_name}',
        [_typed(types, name) for name in inputs], [_typed(types, name) for name in outputs],
        initializer=[t for t in model.graph.initializer if t.name in reads],
        value_info=[v for name, v in types.items() if name in inner])
    return onnx.helper.make_model(
        graph, opset_imports=model.opset_import, functions=model.functions,
        ir_version=model.ir_version, producer_name=model.producer_name,
        producer_version=model.producer_version)


def split_model(model: onnx.ModelProto, heads: List[HeadSpec],
                cut_tensors: Optional[List[str]] = None) -> SplitModel:
    """
    Trunk and heads that together compute exactly what ``model`` computes for the heads.

    Without ``cut_tensors`` the trunk is every node more than one head needs. With them, the
    trunk is everything needed for those tensors and each head everything past them.
    """
    topo = _Topology(model)
    _check_heads(heads, topo.graph_outputs)
    if cut_tensors is None:
        cuts = _automatic_cuts(topo, heads)
    else:
        cuts = _checked_cuts(topo, cut_tensors)
    trunk_nodes = topo.ancestors(cuts, set(topo.graph_inputs))
    stop = set(topo.graph_inputs) | set(cuts)
    head_nodes = {}
    head_inputs = {}
    for head in heads:
        nodes = topo.ancestors(head.outputs, stop)
        _check_separated(topo, head, nodes, trunk_nodes, set(cuts))
        reads = topo.reads(nodes) | set(head.outputs)
        head_nodes[head.name] = nodes
        head_inputs[head.name] = ([name for name in cuts if name in reads]
                                  + [name for name in topo.graph_inputs if name in reads])
    types = _known_types(model)
    trunk = None
    if trunk_nodes:
        trunk_reads = topo.reads(trunk_nodes)
        trunk = _part(topo, types, TRUNK, trunk_nodes,
                      [name for name in topo.graph_inputs if name in trunk_reads], cuts)
    return SplitModel(
        trunk=trunk,
        heads={head.name: _part(topo, types, head.name, head_nodes[head.name],
                                head_inputs[head.name], list(head.outputs)) for head in heads},
        cut_tensors=cuts, head_inputs=head_inputs, original_inputs=list(topo.graph_inputs))


def _run(model: onnx.ModelProto, outputs: List[str],
         tensors: Dict[str, np.ndarray]) -> List[np.ndarray]:
    # Graph optimisations and weight pre-packing off: a fusion across a cut, or weights packed in
    # one model but fed as overridable inputs in the other, would change the order of the sums,
    # and then a difference would not be the split's.
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendError(f'verifying a split needs onnxruntime: {exc}') from None
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry('session.disable_prepacking', '1')
    session = ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                   providers=['CPUExecutionProvider'])
    names = [arg.name for arg in session.get_inputs()]
    missing = [name for name in names if name not in tensors]
    if missing:
        raise ConfigError(f'verifying the split needs input {missing[0]!r}')
    return session.run(outputs, {name: tensors[name] for name in names})


def verify_split(original: onnx.ModelProto, split: SplitModel, inputs: Dict[str, np.ndarray],
                 atol: float = 1e-5, rtol: float = 1e-5) -> float:
    """
    Largest absolute difference between the original's head outputs and the chained split's.

    Raises ConfigError when any output differs beyond ``atol + rtol * |original|``.
    """
    outputs = {head: [v.name for v in part.graph.output] for head, part in split.heads.items()}
    wanted = [name for names in outputs.values() for name in names]
    expected = dict(zip(wanted, _run(original, wanted, inputs)))
    tensors = dict(inputs)
    if split.trunk is not None:
        tensors.update(zip(split.cut_tensors, _run(split.trunk, split.cut_tensors, inputs)))
    worst = 0.0
    for head, part in split.heads.items():
        for name, got in zip(outputs[head], _run(part, outputs[head], tensors)):
            want = np.asarray(expected[name], np.float64)
            got = np.asarray(got, np.float64)
            if got.shape != want.shape:
                raise ConfigError(f'split head {head!r} output {name!r} has shape {got.shape}, '
                                  f'the original {want.shape}')
            diff = float(np.max(np.abs(got - want), initial=0.0))
            if not np.allclose(got, want, atol=atol, rtol=rtol):
                raise ConfigError(f'split head {head!r} output {name!r} differs from the original '
                                  f'by up to {diff:.3g} (atol {atol:g}, rtol {rtol:g})')
            worst = max(worst, diff)
    return worst


def _concrete_shapes(model: onnx.ModelProto,
                     input_shapes: Dict[str, List[int]]) -> Dict[str, Tuple[int, ...]]:
    sized = onnx.ModelProto()
    sized.CopyFrom(model)
    del sized.graph.value_info[:]
    for output in sized.graph.output:
        output.type.tensor_type.ClearField('shape')  # symbolic declarations would win otherwise
    declared = {v.name: v for v in sized.graph.input}
    for name, shape in input_shapes.items():
        if name not in declared:
            raise ConfigError(f'input_shapes names {name!r}, which is not an input of the model')
        dims = declared[name].type.tensor_type.shape.dim
        del dims[:]
        for size in shape:
            dims.add().dim_value = int(size)
    inferred = onnx.shape_inference.infer_shapes(sized, data_prop=True)
    shapes = {t.name: tuple(t.dims) for t in inferred.graph.initializer}
    for v in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        tensor_type = v.type.tensor_type
        if tensor_type.HasField('shape') and all(d.HasField('dim_value')
                                                 for d in tensor_type.shape.dim):
            shapes.setdefault(v.name, tuple(d.dim_value for d in tensor_type.shape.dim))
    return shapes


def _macs(node: onnx.NodeProto, a: Tuple[int, ...], b: Tuple[int, ...],
          out: Tuple[int, ...]) -> int:
    if node.op_type == 'ConvTranspose':  # every input element meets one weight slice
        return math.prod(a) * math.prod(b[1:])
    if node.op_type == 'Conv':
        depth = math.prod(b[1:])
    elif node.op_type == 'Gemm':
        transposed = any(attr.name == 'transA' and attr.i for attr in node.attribute)
        depth = a[0] if transposed else a[1]
    else:
        depth = a[-1]
    return math.prod(out) * depth


def compute_share(model: onnx.ModelProto, split: SplitModel,
                  input_shapes: Dict[str, List[int]]) -> Dict[str, float]:
    """
    Fraction of the split's multiply-accumulates in the trunk and in each head.

    Shows what running the trunk once saves and what each head costs. A node a head repeats
    (explicit cuts can make heads recompute one) counts in each part that runs it.
    """
    shapes = _concrete_shapes(model, input_shapes)
    macs: Dict[Tuple[str, ...], int] = {}
    for node in model.graph.node:
        if node.op_type not in _MAC_OPS or node.domain not in ('', 'ai.onnx'):
            continue
        needed = [node.input[0], node.input[1], node.output[0]]
        missing = [name for name in needed if name not in shapes]
        if missing:
            raise ConfigError(f'cannot count the work of {node.op_type} node '
                              f'{node.name or node.output[0]!r}: the shape of {missing[0]!r} is '
                              f'unknown; give every input a concrete shape')
        macs[tuple(node.output)] = _macs(node, *(shapes[name] for name in needed))
    work = {name: sum(macs.get(tuple(node.output), 0) for node in part.graph.node)
            for name, part in split.parts().items()}
    total = sum(work.values())
    if total == 0:
        raise ConfigError('the split has no Conv, ConvTranspose, Gemm or MatMul work to share')
    shares = {TRUNK: 0.0}
    shares.update((name, count / total) for name, count in work.items())
    return shares


def save_split(split: SplitModel, directory: str) -> Dict[str, str]:
    """Write trunk.onnx and <head>.onnx into ``directory``; their paths by part name."""
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for name, part in split.parts().items():
        paths[name] = os.path.join(directory, f'{name}.onnx')
        onnx.save_model(part, paths[name])
    return paths
