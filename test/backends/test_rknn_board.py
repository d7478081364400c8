"""
The rknn backend's board path, on a fake rknnlite.

The rknn backend's board path (rknnlite) against a faithful fake of rknn-toolkit-lite2's
documented interface (test/fake_rknnlite.py), on a real .rknn file built once by the simulator;
and the backend's one-line errors where rknnlite is absent, as on this machine.
"""

import json
import os
import subprocess
import sys

from conftest import REPO
from error_checks import raises_one_line
import fake_rknnlite
from hobot_npu_infer.core.backends import create_backend
from hobot_npu_infer.core.backends.rknn.model_file import read_rknn_tensors
from hobot_npu_infer.core.backends.rknn.simulator import PYTHON_ENV
from hobot_npu_infer.core.errors import BackendError, ModelLoadError, ModelNotFoundError
from hobot_npu_infer.core.models.builtin_models import resolve_model
from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, PipelineConfig
import numpy as np
import pytest

OUTPUTS = [('537', 1), ('538', 2), ('539', 2), ('540', 10)]  # CenterFace's heads, channels
COMPATIBLE = {'rk3588': b'radxa,rock-5b\0rockchip,rk3588\0',
              'rk3576': b'rockchip,rk3576-evb1-v10\0rockchip,rk3576\0',
              'rk3566': b'radxa,zero3\0rockchip,rk3566\0'}


def board_root(directory, soc: str = '') -> str:
    """Lay out a file-system root as the board with ``soc`` shows it ('' for no board)."""
    directory.mkdir(parents=True, exist_ok=True)
    if soc:
        tree = directory / 'proc' / 'device-tree'
        tree.mkdir(parents=True)
        (tree / 'compatible').write_bytes(COMPATIBLE[soc])
    return str(directory)


@pytest.fixture(scope='module')
def rknn_model(tmp_path_factory, model_cache):
    """Build CenterFace for RK3588 with rknn-toolkit2 at 320x256, compiled batch 2."""
    python = os.environ.get(PYTHON_ENV) or os.path.join(REPO, '.venv-rknn', 'bin', 'python')
    if not os.access(python, os.X_OK):
        pytest.skip('rknn-toolkit2 simulator not installed (make rknn-sim)')
    path = str(tmp_path_factory.mktemp('rknn') / 'centerface-b2.rknn')
    proc = subprocess.run(
        [sys.executable, '-m', 'hobot_npu_infer.tools.rknn_convert', 'centerface', '-o', path,
         '--batch', '2', '--input-size', '320x256'],
        env={**os.environ, PYTHON_ENV: python}, cwd=REPO, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f'wrote {path}' in proc.stdout and 'batch fixed 2' in proc.stdout
    return path


@pytest.fixture
def lite(tmp_path, monkeypatch):
    """Make the fake importable as ``rknnlite.api``."""
    yield fake_rknnlite.installed(tmp_path, monkeypatch)
    fake_rknnlite.uninstalled()


def batch_of(lite, path: str, batch: int) -> str:
    lite.compiled_batch[os.path.realpath(path)] = batch
    return path


def hidden_table(rknn_model: str, directory) -> str:
    """Copy the model so that the backend cannot find its tensor table (the fake still can)."""
    with open(rknn_model, 'rb') as f:
        data = f.read()
    assert data.count(b"{'attrs': {") == 1
    path = directory / 'no-table.rknn'
    path.write_bytes(data.replace(b"{'attrs': {", b"{'attrz': {"))
    return str(path)


# --- the file's tensor table ---------------------------------------------------------------------


def test_tensor_table_of_a_real_rknn_file(rknn_model):
    [image] = read_rknn_tensors(rknn_model, outputs=False)
    assert (image.name, image.index, image.shape, image.layout) == \
        ('input.1', 0, (1, 3, 256, 320), 'nchw')
    assert image.image_size == (320, 256)
    outputs = read_rknn_tensors(rknn_model, outputs=True)
    assert [(t.name, t.index, t.shape) for t in outputs] == \
        [(name, i, (1, c, 64, 80)) for i, (name, c) in enumerate(OUTPUTS)]


def test_files_without_a_table_read_as_empty(rknn_model, tmp_path):
    assert read_rknn_tensors(hidden_table(rknn_model, tmp_path), outputs=False) == []
    garbage = tmp_path / 'garbage.rknn'
    garbage.write_bytes(b"RKNN\0\0{'attrs': {'x': {'shape': [1,")
    assert read_rknn_tensors(str(garbage), outputs=True) == []
    assert read_rknn_tensors(str(tmp_path / 'missing.rknn'), outputs=True) == []


# --- on a board, through rknnlite --------------------------------------------------------------


def test_one_runtime_per_npu_core_on_rk3588(lite, rknn_model, tmp_path):
    backend = create_backend('rknn', root=board_root(tmp_path, 'rk3588'), batch_size=2)
    assert (backend.target, backend.default_runtimes) == ('rk3588', 3)
    batch_of(lite, rknn_model, 2)
    models = [backend.load(rknn_model, runtime=i)[0] for i in range(3)]
    assert [instance.core_mask for instance in lite.instances] == [1, 2, 4]
    assert all(i.path == rknn_model and not i.released for i in lite.instances)
    for model in models:
        assert model.where == 'board' and model.name == 'centerface-b2'
        [spec] = model.inputs
        assert (spec.name, spec.shape, spec.dtype, spec.layout) == \
            ('input.1', (2, 256, 320, 3), np.dtype(np.uint8), 'NHWC')
        assert model.batch.fixed_size == 2
        assert [(o.name, o.shape, o.dtype) for o in model.outputs] == \
            [(name, (2, c, 64, 80), np.dtype(np.float32)) for name, c in OUTPUTS]
    # The warm-up at load ran the model's own input through rknnlite, NHWC.
    assert lite.instances[0].calls[0]['shapes'] == [(2, 256, 320, 3)]
    assert lite.instances[0].calls[0]['data_format'] == ['nhwc']
    for model in models:
        model.close()
    assert all(i.released for i in lite.instances)


def test_the_compiled_batch_comes_from_what_rknn_convert_recorded(lite, rknn_model, tmp_path):
    with open(rknn_model + '.json') as record:
        assert json.load(record)['rknn_batch_size'] == 2
    batch_of(lite, rknn_model, 2)
    model = create_backend('rknn', root=board_root(tmp_path, 'rk3588')).load(rknn_model)[0]
    assert model.batch.fixed_size == 2 and model.inputs[0].shape[0] == 2
    model.close()


def test_run_returns_what_the_npu_computed_from_the_pixels(lite, rknn_model, tmp_path):
    backend = create_backend('rknn', root=board_root(tmp_path, 'rk3588'), batch_size=2)
    [model] = backend.load(batch_of(lite, rknn_model, 2))
    batch = np.empty((2, 256, 320, 3), np.uint8)
    batch[0], batch[1] = 51, 204
    outputs = model.run([batch])
    assert len(outputs) == 4
    for k, (out, (_, c)) in enumerate(zip(outputs, OUTPUTS)):
        assert out.shape == (2, c, 64, 80)
        np.testing.assert_allclose(out[0], 0.2 + k, rtol=1e-6)
        np.testing.assert_allclose(out[1], 0.8 + k, rtol=1e-6)
    assert lite.instances[0].calls[-1]['dtypes'] == [np.dtype(np.uint8)]
    # By name works as well; a wrong shape is refused before the NPU sees it.
    assert np.allclose(model.run({'input.1': batch})[0][1], 0.8)
    calls = len(lite.instances[0].calls)
    with pytest.raises(BackendError, match=r'wants input.1 \[2,256,320,3\] uint8 NHWC'):
        model.run([batch[:1]])
    assert len(lite.instances[0].calls) == calls


def test_default_runtimes_and_target_follow_the_board(lite, tmp_path):
    cases = {'rk3588': 3, 'rk3576': 2, 'rk3566': 1, '': 1}
    for soc, runtimes in cases.items():
        backend = create_backend('rknn', root=board_root(tmp_path / (soc or 'pc'), soc))
        assert backend.default_runtimes == runtimes, soc
        assert backend.target == (soc or 'rk3588')
    # The target option wins over the board.
    assert create_backend('rknn', target='rk3576',
                          root=board_root(tmp_path / 'x', 'rk3588')).target == 'rk3576'


def test_rk3576_pins_runtimes_to_its_two_cores(lite, rknn_model, tmp_path):
    lite.reset(cores=2)
    batch_of(lite, rknn_model, 2)
    backend = create_backend('rknn', root=board_root(tmp_path, 'rk3576'))
    for runtime in range(3):
        backend.load(rknn_model, runtime)
    assert [i.core_mask for i in lite.instances] == [1, 2, 1]
    assert lite.instances[0].calls[0]['shapes'] == [(2, 256, 320, 3)]


def test_core_mask_list_gives_each_runtime_its_own(lite, rknn_model, tmp_path):
    backend = create_backend('rknn', root=board_root(tmp_path, 'rk3588'),
                             core_mask='core2,core0_1,core0')
    batch_of(lite, rknn_model, 2)
    for runtime in range(3):
        backend.load(rknn_model, runtime)
    assert [i.core_mask for i in lite.instances] == [4, 3, 1]
    with pytest.raises(BackendError, match='lists 3 masks for 4 runtimes'):
        backend.load(rknn_model, 3)
    # All cores at once, for every runtime.
    lite.reset()
    batch_of(lite, rknn_model, 2)
    create_backend('rknn', root=board_root(tmp_path / 'b', 'rk3588'),
                   core_mask='core0_1_2').load(rknn_model, 1)
    assert lite.instances[0].core_mask == 7


@pytest.mark.parametrize('soc, mask, message', [
    ('rk3576', 'core2', 'rknn core_mask core2 names a core rk3576 does not have (rk3576 has 2 '
                        'NPU cores)'),
    ('rk3566', 'core0_1', 'rknn core_mask core0_1 names a core rk3566 does not have (rk3566 has '
                          '1 NPU core)'),
    ('rk3588', 'core3', "unknown rknn core_mask 'core3'; use one of auto, core0, core1, core2, "
                        'core0_1, core0_1_2'),
    ('rk3588', 'core0,bogus', "unknown rknn core_mask 'bogus'"),
])
def test_wrong_core_mask_fails_at_construction(lite, tmp_path, soc, mask, message):
    with pytest.raises(BackendError) as error:
        create_backend('rknn', root=board_root(tmp_path, soc), core_mask=mask)
    assert str(error.value).startswith(message)
    assert lite.instances == []


def test_inference_returning_none_is_one_line_backend_error(lite, rknn_model, tmp_path):
    batch_of(lite, rknn_model, 2)
    [model] = create_backend('rknn', root=board_root(tmp_path, 'rk3588')).load(rknn_model)
    lite.faults['inference'] = True
    with pytest.raises(BackendError) as error:
        model.run([np.zeros((2, 256, 320, 3), np.uint8)])
    assert str(error.value) == 'rknn inference failed on the NPU (rknnlite returned no outputs)'


def test_a_file_rknnlite_cannot_load_is_model_load_error(lite, tmp_path):
    path = tmp_path / 'broken.rknn'
    path.write_bytes(b'this is not an rknn model')
    backend = create_backend('rknn', root=board_root(tmp_path / 'root', 'rk3588'))
    with pytest.raises(ModelLoadError) as error:
        backend.load(str(path))
    assert str(error.value) == f'rknnlite cannot load {path}: not a valid .rknn file'
    assert [i.released for i in lite.instances] == [True]


def test_init_runtime_failure_is_model_load_error(lite, rknn_model, tmp_path):
    lite.reset(cores=2)  # the board says rk3588 but its NPU has two cores: core 2 is refused
    backend = create_backend('rknn', root=board_root(tmp_path, 'rk3588'))
    with pytest.raises(ModelLoadError) as error:
        backend.load(rknn_model, runtime=2)
    assert 'init_runtime failed' in str(error.value) and 'core_mask 4' in str(error.value)
    assert [i.released for i in lite.instances] == [True]


def test_a_file_without_a_table_needs_input_size(lite, rknn_model, tmp_path):
    path = hidden_table(rknn_model, tmp_path)
    backend = create_backend('rknn', root=board_root(tmp_path / 'root', 'rk3588'))
    with pytest.raises(ModelLoadError) as error:
        backend.load(path)
    assert str(error.value) == (f'cannot read the input size of {path}; set backend option '
                                f'input_size (e.g. 640x640)')
    assert [i.released for i in lite.instances] == [True]  # not left holding the NPU
    [model] = create_backend('rknn', root=board_root(tmp_path / 'root2', 'rk3588'),
                             input_size='320x256').load(path)
    assert model.inputs[0].name == 'input' and model.inputs[0].shape == (1, 256, 320, 3)
    assert [o.name for o in model.outputs] == ['output0', 'output1', 'output2', 'output3']
    assert [o.shape[1] for o in model.outputs] == [c for _, c in OUTPUTS]


def test_input_size_overrides_the_table(lite, rknn_model, tmp_path):
    backend = create_backend('rknn', root=board_root(tmp_path, 'rk3588'), input_size='640x512')
    batch_of(lite, rknn_model, 2)
    # The NPU got the size asked for, and refused it: a wrong size fails at load, not later.
    with pytest.raises(BackendError, match='rknnlite returned no outputs'):
        backend.load(rknn_model)
    assert lite.instances[0].calls[0]['shapes'] == [(2, 512, 640, 3)]
    assert lite.instances[0].released


def test_pipeline_loads_one_runtime_per_core_and_detects(lite, rknn_model, tmp_path):
    batch_of(lite, rknn_model, 2)
    pipeline = DetectionPipeline.from_config(PipelineConfig(
        backend='rknn', model=rknn_model, decoder='centerface', num_runtimes=0,
        backend_options={'root': board_root(tmp_path, 'rk3588'), 'batch_size': 2}))
    assert len(pipeline.runtimes) == 3 and pipeline.runtimes[0] is pipeline.model
    assert [i.core_mask for i in lite.instances] == [1, 2, 4]
    assert pipeline.backend_note == 'backend rknn' and pipeline.max_batch == 2
    dark = np.full((480, 640, 3), 25, np.uint8)  # heatmap 0.1 everywhere: no faces
    results, _ = pipeline.detect([dark] * 3)
    assert [(r.detections, r.width, r.height) for r in results] == [([], 640, 480)] * 3
    shapes = [c['shapes'] for c in lite.instances[0].calls[1:]]  # after the warm-up
    assert shapes == [[(2, 256, 320, 3)], [(2, 256, 320, 3)]]  # 3 images: two runs, padded
    for model in pipeline.runtimes:
        model.close()


# --- off the board: rknnlite is not installed ---------------------------------------------------


@pytest.fixture
def no_rknnlite(monkeypatch):
    monkeypatch.setitem(sys.modules, 'rknnlite', None)


def test_rknn_file_off_the_board_is_one_line_that_says_what_to_do(no_rknnlite, tmp_path):
    path = tmp_path / 'model.rknn'
    path.write_bytes(b'RKNN\0\0\0\0')
    backend = create_backend('rknn', root=board_root(tmp_path / 'pc'))
    message = str(raises_one_line(BackendError, backend.load, str(path)))
    assert message.startswith('model.rknn is a .rknn file, which runs only on a Rockchip board '
                              'with rknn-toolkit-lite2 (rknnlite)')
    assert message.endswith('so give it the .onnx file')


def test_load_and_option_errors(no_rknnlite, tmp_path):
    backend = create_backend('rknn', root=board_root(tmp_path / 'pc'))
    text = tmp_path / 'model.txt'
    text.write_text('not a model')
    with pytest.raises(ModelLoadError, match='runs .rknn files .* not model.txt'):
        backend.load(str(text))
    with pytest.raises(ModelNotFoundError, match='model file not found'):
        backend.load(str(tmp_path / 'missing.rknn'))
    with pytest.raises(BackendError, match='rknn quantize needs dataset'):
        create_backend('rknn', quantize=True)
    with pytest.raises(BackendError, match="unknown rknn target 'rk9999'; use one of rk3588"):
        create_backend('rknn', target='rk9999')
    for size in (-1, 65, 2.0, True):
        with pytest.raises(BackendError, match='batch_size must be an integer within 0..64'):
            create_backend('rknn', batch_size=size)


def test_missing_simulator_python_says_make_rknn_sim(no_rknnlite, tmp_path, model_cache):
    onnx_path = resolve_model('centerface').path
    backend = create_backend('rknn', simulator_python=str(tmp_path / 'nowhere' / 'python'),
                             input_size='320x256')
    message = str(raises_one_line(BackendError, backend.load, onnx_path))
    assert '`make rknn-sim`' in message
    assert str(tmp_path / 'nowhere' / 'python') in message
