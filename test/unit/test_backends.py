"""The backend interface and the ONNX Runtime backend's settings."""

from types import SimpleNamespace

from hobot_npu_infer.core.backends import backend_names, create_backend, select_model
from hobot_npu_infer.core.errors import (
    BackendError,
    ConfigError,
    ModelLoadError,
    ModelNotFoundError,
)
import numpy as np
import onnx
from onnx import helper, TensorProto
import pytest


def tiny_model(path, batch=None):
    """Write a model y = x * 2 with NHWC uint8 input; batch fixed or dynamic."""
    b = batch if batch else 'N'
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [b, 8, 8, 3])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [b, 8, 8, 3])
    two = helper.make_tensor('two', TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph([helper.make_node('Mul', ['x', 'two'], ['y'])], 'g', [x], [y], [two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def test_registry_names_onnxruntime_and_rejects_unknown():
    assert 'onnxruntime' in backend_names()
    with pytest.raises(BackendError, match="unknown backend 'tpu'"):
        create_backend('tpu')


def test_select_model_by_name_or_the_only_one_and_errors_list_what_the_file_holds():
    faces, faces_b4 = SimpleNamespace(name='faces'), SimpleNamespace(name='faces_b4')
    assert select_model([faces], '', 'one.bin') is faces
    assert select_model([faces, faces_b4], 'faces_b4', 'pack.bin') is faces_b4
    with pytest.raises(ConfigError) as error:
        select_model([faces, faces_b4], '', 'pack.bin')
    assert str(error.value) == ('pack.bin holds 2 models (faces, faces_b4); choose one by '
                                'model_name')
    with pytest.raises(ConfigError) as error:
        select_model([faces, faces_b4], 'nope', 'pack.bin', 'head landmarks')
    assert str(error.value) == ("pack.bin holds no model named 'nope'; it holds faces, "
                                'faces_b4 (for head landmarks)')


def test_specs_batch_and_run(tmp_path):
    [model] = create_backend('onnxruntime').load(tiny_model(tmp_path / 'dyn.onnx'))
    assert model.name == 'dyn'
    [spec] = model.inputs
    assert spec.name == 'x' and spec.shape == (None, 8, 8, 3) and spec.layout == 'NHWC'
    assert spec.dtype == np.float32 and spec.image_size == (8, 8)
    assert model.batch.dynamic and model.batch.accepts(5)
    x = np.ones((5, 8, 8, 3), np.float32)
    [y] = model.run({'x': x})
    assert np.array_equal(y, x * 2)
    [y] = model.run([x[:1]])
    assert y.shape == (1, 8, 8, 3)
    with pytest.raises(BackendError, match='takes 1 input'):
        model.run([x, x])


def test_fixed_batch_is_reported(tmp_path):
    [model] = create_backend('onnxruntime').load(tiny_model(tmp_path / 'b4.onnx', batch=4))
    assert model.batch.fixed_size == 4 and not model.batch.accepts(3)
    assert model.batch.describe() == 'fixed 4'


def test_robot_friendly_session_settings(tmp_path):
    backend = create_backend('onnxruntime', intra_op_threads=1, inter_op_threads=1)
    options = backend.session_options
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry('session.intra_op.allow_spinning') == '0'
    assert options.get_session_config_entry('session.inter_op.allow_spinning') == '0'
    [model] = backend.load(tiny_model(tmp_path / 'm.onnx'))
    assert model.providers == ['CPUExecutionProvider']


def test_bad_provider_and_threads():
    with pytest.raises(BackendError, match='NoSuchExecutionProvider'):
        create_backend('onnxruntime', providers='NoSuchExecutionProvider')
    with pytest.raises(BackendError, match='>= 0'):
        create_backend('onnxruntime', intra_op_threads=-1)


def test_missing_and_corrupt_files(tmp_path):
    backend = create_backend('onnxruntime')
    with pytest.raises(ModelNotFoundError, match='not found'):
        backend.load(str(tmp_path / 'missing.onnx'))
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(b'garbage')
    with pytest.raises(ModelLoadError, match='corrupt.onnx'):
        backend.load(str(corrupt))
