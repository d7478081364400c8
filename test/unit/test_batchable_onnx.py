"""Batch-1 ONNX exports made batchable: rewritten from the graph, verified, else refused."""

import os

import cv2
from hobot_npu_infer.core.backends import create_backend
from hobot_npu_infer.core.imaging.sample_images import load_sample
from hobot_npu_infer.core.models.batchable_onnx import (
    batchable_model,
    make_batchable,
    NotBatchable,
    verify_batchable,
)
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, PipelineConfig
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import onnxruntime
import pytest

RNG = np.random.default_rng(0)


def graph_model(nodes, constants, shape=(1, 3, 8, 8), dtype=TensorProto.FLOAT, batch=1,
                name='net'):
    """Return an opset-13 model of ``nodes`` from image ``x`` to output ``y``."""
    dims = [batch if batch else 'N', *shape[1:]]
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info('x', dtype, dims)],
        [helper.make_tensor_value_info('y', dtype, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], ir_version=8)
    return onnx.shape_inference.infer_shapes(model)  # batch-1 value_info, as exporters write


def conv_weight(out_channels=4, in_channels=3, dtype=np.float32):
    return RNG.standard_normal((out_channels, in_channels, 3, 3)).astype(dtype)


def yolo_like(dtype=np.float32):
    """Return a head as YOLOv8's: conv, ``Reshape(x, [1, C, -1])``, a class token concatenated."""
    elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
    return graph_model([
        helper.make_node('Conv', ['x', 'w'], ['c'], pads=[1, 1, 1, 1]),
        helper.make_node('Reshape', ['c', 'shape'], ['r']),
        helper.make_node('Concat', ['token', 'r'], ['t'], axis=2),
        helper.make_node('Softmax', ['t'], ['s'], axis=1),
        helper.make_node('Reshape', ['s', 'back'], ['y'])],
        {'w': conv_weight(dtype=dtype), 'shape': np.array([1, 4, -1], np.int64),
         'token': RNG.standard_normal((1, 4, 1)).astype(dtype),
         'back': np.array([1, 2, 2, 65], np.int64)}, dtype=elem)


def constants_beside_the_batch():
    """Return constants shaped for batch 1 beside the image: ConstantOfShape, Tile, Expand."""
    filled = helper.make_tensor('half', TensorProto.FLOAT, [1], [0.5])
    return graph_model([
        helper.make_node('ConstantOfShape', ['plane'], ['fill'], value=filled),
        helper.make_node('Tile', ['row', 'repeats'], ['tiled']),
        helper.make_node('Expand', ['x', 'same'], ['e']),
        helper.make_node('Concat', ['e', 'fill', 'tiled'], ['c'], axis=1),
        helper.make_node('Conv', ['c', 'w'], ['y'], pads=[1, 1, 1, 1])],
        {'plane': np.array([1, 1, 8, 8], np.int64), 'same': np.array([1, 3, 8, 8], np.int64),
         'row': RNG.standard_normal((1, 1, 1, 8)).astype(np.float32),
         'repeats': np.array([1, 1, 8, 1], np.int64), 'w': conv_weight(in_channels=5)})


def dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.mark.parametrize('build, dtype, shape', [
    (yolo_like, np.float32, (2, 2, 65)), (yolo_like, np.float16, (2, 2, 65)),
    (constants_beside_the_batch, np.float32, (4, 8, 8))])
def test_reshapes_and_concatenated_constants_follow_the_batch(build, dtype, shape):
    model = build(dtype) if build is yolo_like else build()
    rewritten = make_batchable(model)
    assert dims(rewritten.graph.input[0]) == ['batch', 3, 8, 8]
    assert dims(rewritten.graph.output[0])[0] == 'batch'
    assert not rewritten.graph.value_info  # batch-1 shapes are stale once the batch is free
    worst = verify_batchable(model, rewritten)
    assert set(worst) == {'y'} and worst['y'] <= (1e-3 if dtype == np.float16 else 1e-6)
    session = onnxruntime.InferenceSession(rewritten.SerializeToString(),
                                           providers=['CPUExecutionProvider'])
    [y] = session.run(None, {'x': np.zeros((5, 3, 8, 8), dtype)})
    assert y.shape == (5, *shape)


def flatten_then_matmul():
    """Flatten at axis 0 (the batch folded into the features), a weight for one image."""
    return graph_model([helper.make_node('Flatten', ['x'], ['f'], axis=0),
                        helper.make_node('MatMul', ['f', 'w'], ['y'], name='classifier')],
                       {'w': RNG.standard_normal((192, 10)).astype(np.float32)})


def weight_on_the_batch():
    """Flatten kept the batch, but it ends up contracted against a weight of one row."""
    return graph_model([helper.make_node('Flatten', ['x'], ['f'], axis=1),
                        helper.make_node('Transpose', ['f'], ['t'], perm=[1, 0]),
                        helper.make_node('MatMul', ['t', 'w'], ['y'], name='mix')],
                       {'w': RNG.standard_normal((1, 10)).astype(np.float32)})


def reshape_merging_the_batch():
    """``Reshape(x, [-1, 16])``: the batch becomes part of the rows."""
    return graph_model([helper.make_node('Reshape', ['x', 'shape'], ['y'], name='merge')],
                       {'shape': np.array([-1, 16], np.int64)}, shape=(1, 3, 4, 4))


def slice_of_the_first_image():
    return graph_model([helper.make_node('Slice', ['x', 'zero', 'one', 'zero'], ['y'],
                                         name='first')],
                       {'zero': np.array([0], np.int64), 'one': np.array([1], np.int64)})


def squeezed_batch():
    return graph_model([helper.make_node('Squeeze', ['x', 'axes'], ['y'], name='squeeze')],
                       {'axes': np.array([0], np.int64)})


@pytest.mark.parametrize('build, reason', [
    (flatten_then_matmul, "Flatten node 'f' merges the batch into axis 1"),
    (weight_on_the_batch, 'do not fit at batch 7: (op_type:MatMul, node name: mix)'),
    (reshape_merging_the_batch, "Reshape node 'merge' merges the batch into axis 0"),
    (slice_of_the_first_image, "Slice node 'first' drops the batch (its output is "
                               '[1,3,8,8] whatever the batch)'),
    (squeezed_batch, 'do not fit at batch 7: (op_type:Squeeze, node name: squeeze)'),
])
def test_graphs_tied_to_batch_one_are_refused_with_the_node(build, reason):
    with pytest.raises(NotBatchable) as raised:
        make_batchable(build())
    assert reason in str(raised.value)


def test_verification_refuses_a_rewrite_mixing_the_images():
    original = graph_model([helper.make_node('Identity', ['x'], ['y'])], {})
    # the same at batch 1, but every image gets the batch's mean
    mixing = graph_model([helper.make_node('ReduceMean', ['x'], ['m'], axes=[0]),
                          helper.make_node('Sub', ['x', 'x'], ['z']),
                          helper.make_node('Add', ['z', 'm'], ['y'])], {}, batch=0)
    assert verify_batchable(original, mixing, count=1) == {'y': 0.0}
    with pytest.raises(NotBatchable, match="output 'y' differs batched from one image"):
        verify_batchable(original, mixing)


def test_refusal_is_one_line_with_the_fix_and_the_model_stays_at_batch_one(tmp_path):
    path = str(tmp_path / 'classifier.onnx')
    onnx.save(flatten_then_matmul(), path)
    cache = str(tmp_path / 'cache')
    result = batchable_model(path, cache, 4)
    assert result.path == path and not result.rewritten
    assert '\n' not in result.note
    assert result.note.startswith(f'{path} is fixed at batch 1 and runs one image per run, not '
                                  f'batches of up to 4 (Flatten node')
    assert 'yolo export model=classifier.pt format=onnx dynamic=True' in result.note
    assert 'torch.onnx.export(..., dynamic_axes=...)' in result.note
    [refused] = os.listdir(cache)  # the verdict is cached with the source's digest
    assert refused.startswith('classifier-batchable-') and refused.endswith('.refused')
    assert batchable_model(path, cache, 4) == result


def test_rewrite_is_cached_and_other_models_are_left_alone(tmp_path):
    path = str(tmp_path / 'head.onnx')
    onnx.save(yolo_like(), path)
    cache = str(tmp_path / 'cache')
    result = batchable_model(path, cache, 4)
    assert result.rewritten and os.path.dirname(result.path) == cache
    assert result.note == ('made batchable: batch 1 export rewritten to a dynamic batch, '
                           'verified on 4 inputs')
    [model] = create_backend('onnxruntime').load(result.path)
    assert model.batch.dynamic
    mtime = os.stat(result.path).st_mtime_ns
    assert batchable_model(path, cache, 2) == result
    assert os.stat(result.path).st_mtime_ns == mtime and os.listdir(cache) == [
        os.path.basename(result.path)]

    dynamic = str(tmp_path / 'dynamic.onnx')
    onnx.save(graph_model([helper.make_node('Identity', ['x'], ['y'])], {}, batch=0), dynamic)
    fixed_four = str(tmp_path / 'four.onnx')
    onnx.save(graph_model([helper.make_node('Identity', ['x'], ['y'])], {}, batch=4),
              fixed_four)
    for unchanged in (batchable_model(path, cache, 1), batchable_model(dynamic, cache, 4),
                      batchable_model(fixed_four, cache, 4)):
        assert not unchanged.rewritten and not unchanged.note
    assert len(os.listdir(cache)) == 1


# -- the real YOLOv8 export --------------------------------------------------------------------


def yolo_input(image: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(cv2.resize(image, (640, 640)), cv2.COLOR_BGR2RGB)
    return (rgb.transpose(2, 0, 1)[None] / 255.0).astype(np.float32)


def test_fall_model_at_batch_4_matches_its_batch_1_export_on_every_output(fetched_models):
    path = fetched_models['best_fp16.onnx']
    original = onnx.load(path)
    rewritten = make_batchable(original)
    reshapes = [n for n in rewritten.graph.node if n.op_type == 'Reshape']
    freed = {init.name: numpy_helper.to_array(init) for init in rewritten.graph.initializer}
    assert len(reshapes) == 5 and all(freed[n.input[1]][0] == 0 for n in reshapes)
    bus, zidane = cv2.imread(fetched_models['bus.jpg']), cv2.imread(fetched_models['zidane.jpg'])
    images = [yolo_input(i) for i in (bus, zidane, cv2.flip(bus, 1), load_sample('astronaut'))]
    one = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    many = onnxruntime.InferenceSession(rewritten.SerializeToString(),
                                        providers=['CPUExecutionProvider'])
    names = [o.name for o in one.get_outputs()]
    batched = many.run(names, {'images': np.concatenate(images)})
    for k, name in enumerate(names):
        alone = np.concatenate([one.run(names, {'images': image})[k] for image in images])
        assert batched[k].shape == (4, *alone.shape[1:])
        np.testing.assert_allclose(batched[k], alone, rtol=0, atol=1e-5 * np.abs(alone).max())
        print(f'{name}: max abs difference {np.abs(batched[k] - alone).max():.3g}')


def test_pipeline_for_batches_of_4_runs_the_fall_model_at_a_dynamic_batch(fetched_models):
    path = fetched_models['best_fp16.onnx']
    pipeline = DetectionPipeline.from_config(PipelineConfig(model=path, max_batch=4))
    assert pipeline.model.batch.dynamic and pipeline.max_batch == 0
    assert pipeline.model_path == path  # the user's file is the one watched and reported
    assert pipeline.model_note.endswith('; made batchable: batch 1 export rewritten to a '
                                        'dynamic batch, verified on 4 inputs')
    single = DetectionPipeline.from_config(PipelineConfig(model=path))
    assert single.model.batch.fixed_size == 1 and 'batchable' not in single.model_note
    images = [cv2.imread(fetched_models['bus.jpg']), cv2.imread(fetched_models['zidane.jpg'])]
    batch = pipeline.prepare(images)
    assert batch.tensor.shape[0] == 2
    together = pipeline.decode(pipeline.infer(batch), batch)
    alone = [single.decode(single.infer(b), b) for b in map(single.prepare, ([i] for i in images))]
    assert together == [a[0] for a in alone] and all(together)
