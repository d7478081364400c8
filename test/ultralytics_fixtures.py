"""
Fixtures of the parity tests: the fetched models and photos, and Ultralytics' own results.

``make test`` makes both (``make models``, ``make ultralytics``) and points
HOBOT_NPU_INFER_MODELS and HOBOT_NPU_INFER_ULTRALYTICS_PYTHON at them; a pytest run by hand
without them skips the tests that need them, and says so. The reference runs once per test
session: test/ultralytics_reference.py, in the Ultralytics environment, exports every model of
MODEL_SPECS to ONNX and writes Ultralytics' predict() results on the same images.
"""

import json
import os
import subprocess

import pytest

MODELS_VARIABLE = 'HOBOT_NPU_INFER_MODELS'
PYTHON_VARIABLE = 'HOBOT_NPU_INFER_ULTRALYTICS_PYTHON'
FETCHED_FILES = ('best_fp16.onnx', 'best.pt', 'bus.jpg', 'zidane.jpg')
REFERENCE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'ultralytics_reference.py')
REFERENCE_TIMEOUT = 1800  # seconds; about 90 on a 2-core PC

RANDOM_CONF = 0.05  # random weights score low; the reference script sets their class biases
REAL_CONF = 0.25  # Ultralytics' default, which the package must take for an Ultralytics export


def parity_spec(name, model, conf=RANDOM_CONF, configured=True, **export):
    """
    Return one model of the parity tests, as the reference script reads it.

    A name ending in -dynamic is exported with a dynamic batch and run on a batch of three
    different images (Ultralytics runs them as one batch of 640x640 letterboxed images); others
    run one image at a time. ``configured``: the package is given ``conf`` as its score
    threshold, else nothing but the model's path. ``conf`` None: no threshold (classify).
    """
    dynamic = name.endswith('-dynamic')
    if dynamic:
        export['dynamic'] = True
    if model.endswith('.yaml'):  # random weights: bus, and bus turned to landscape
        batches = ([['bus_rotated', 'bus', 'bus_flipped']] if dynamic
                   else [['bus'], ['bus_rotated']])
    else:
        batches = [['bus', 'zidane', 'bus_flipped']] if dynamic else [['bus'], ['zidane']]
    return {'name': name, 'model': model, 'export': export, 'conf': conf,
            'configured': configured and conf is not None, 'batches': batches}


def random_specs(name, model, **kwargs):
    """Return a random-weight model at a batch of one and as a dynamic-batch export."""
    return [parity_spec(name, model, **kwargs), parity_spec(f'{name}-dynamic', model, **kwargs)]


# Every model of the parity tests. A .yaml model has random weights, built offline; 'fall' is
# real: a YOLOv8s fall detector (Normal, Fall) as shipped, and its .pt re-exported.
MODEL_SPECS = (
    random_specs('yolov5nu', 'yolov5n.yaml')
    + random_specs('yolov8n', 'yolov8n.yaml')
    + random_specs('yolo11n', 'yolo11n.yaml')
    + random_specs('yolov10n-end2end', 'yolov10n.yaml', nms=False)
    + random_specs('yolo26n-end2end', 'yolo26n.yaml', nms=False)
    + random_specs('yolov8n-seg', 'yolov8n-seg.yaml')
    + random_specs('yolo11n-seg', 'yolo11n-seg.yaml')
    + random_specs('yolov8n-pose', 'yolov8n-pose.yaml')
    + random_specs('yolov8n-cls', 'yolov8n-cls.yaml', conf=None, imgsz=224)
    + random_specs('yolov8n-obb', 'yolov8n-obb.yaml')
    + [parity_spec('yolo26n-seg-end2end', 'yolo26n-seg.yaml', nms=False),
       parity_spec('yolo26n-pose-end2end', 'yolo26n-pose.yaml', nms=False),
       parity_spec('yolo26n-obb-end2end', 'yolo26n-obb.yaml', nms=False),
       parity_spec('yolo26n-sem', 'yolo26n-sem.yaml', conf=None)]
    + [parity_spec('fall', '{models}/best_fp16.onnx', conf=REAL_CONF, configured=False),
       parity_spec('fall-dynamic', '{models}/best.pt', conf=REAL_CONF, configured=False)]
)
SPEC_NAMES = [spec['name'] for spec in MODEL_SPECS]


def spec_by_name(name):
    return next(spec for spec in MODEL_SPECS if spec['name'] == name)


@pytest.fixture(scope='session')
def fetched_models():
    """
    Return the real model files and photos by file name: best_fp16.onnx, best.pt, bus.jpg.

    They are fetched by ``make models``; ``make test`` always fetches them and points
    HOBOT_NPU_INFER_MODELS at them. Unset only when pytest is run by hand without it.
    """
    folder = os.environ.get(MODELS_VARIABLE, '')
    if not folder:
        pytest.skip(f'{MODELS_VARIABLE} is not set: run the tests with `make test`')
    paths = {name: os.path.join(folder, name) for name in FETCHED_FILES}
    missing = [path for path in paths.values() if not os.path.isfile(path)]
    assert not missing, f'{missing} missing: run `make models`'
    return paths


@pytest.fixture(scope='session')
def parity_images(fetched_models, tmp_path_factory):
    """
    Return the images of the parity tests as PNG files, by name.

    bus and zidane are the photos; bus_flipped is bus mirrored, bus_rotated bus turned a
    quarter clockwise (a landscape image). Decoded once here, so both sides read the same
    pixels whatever their JPEG decoders.
    """
    import cv2
    folder = tmp_path_factory.mktemp('parity-images')
    bus = cv2.imread(fetched_models['bus.jpg'])
    zidane = cv2.imread(fetched_models['zidane.jpg'])
    images = {'bus': bus, 'zidane': zidane, 'bus_flipped': cv2.flip(bus, 1),
              'bus_rotated': cv2.rotate(bus, cv2.ROTATE_90_CLOCKWISE)}
    paths = {}
    for name, image in images.items():
        paths[name] = str(folder / f'{name}.png')
        assert cv2.imwrite(paths[name], image)
    return paths


@pytest.fixture(scope='session')
def ultralytics_python():
    """
    Return the Ultralytics environment's Python.

    It is made by ``make ultralytics``; ``make test`` always makes it and points
    HOBOT_NPU_INFER_ULTRALYTICS_PYTHON at it. Unset only when pytest is run by hand without it.
    """
    python = os.environ.get(PYTHON_VARIABLE, '')
    if not python:
        pytest.skip(f'{PYTHON_VARIABLE} is not set: run the tests with `make test`')
    assert os.access(python, os.X_OK), f'{python} missing: run `make ultralytics`'
    return python


@pytest.fixture(scope='session')
def ultralytics_reference(ultralytics_python, fetched_models, parity_images, tmp_path_factory):
    """
    Return Ultralytics' results on every model of MODEL_SPECS: the reference script's index.

    {'ultralytics': version, 'models': {name: {'onnx', 'task', 'conf', 'names', 'inputs',
    'outputs', 'batches': [[{'image', 'path', 'npz'}, ...], ...]}}}; see
    test/ultralytics_reference.py.
    """
    work = tmp_path_factory.mktemp('ultralytics-reference')
    folder = os.path.dirname(fetched_models['best.pt'])
    models = [dict(spec, model=spec['model'].format(models=folder)) for spec in MODEL_SPECS]
    specs = work / 'specs.json'
    specs.write_text(json.dumps({'images': parity_images, 'models': models}, indent=1))
    env = dict(os.environ, YOLO_OFFLINE='1', YOLO_CONFIG_DIR=str(work / 'ultralytics-config'))
    for variable in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV'):
        env.pop(variable, None)  # the Ultralytics environment's own Python, nothing of .venv
    result = subprocess.run([ultralytics_python, REFERENCE_SCRIPT, str(work), str(specs)],
                            cwd=str(work), env=env, capture_output=True, text=True,
                            timeout=REFERENCE_TIMEOUT)
    assert result.returncode == 0, f'the reference script failed:\n{result.stderr[-4000:]}'
    with open(work / 'index.json') as f:
        return json.load(f)
