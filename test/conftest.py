"""Shared fixtures. DDS is kept on loopback with a domain of this run's own, for every test."""

import os
import random

from hypothesis import settings
import pytest
from stream_harness import make_harness  # noqa: F401 (a fixture for every test)
from tros_fixtures import tros_messages, tros_msgs  # noqa: F401 (TROS's message packages)
from ultralytics_fixtures import (  # noqa: F401 (the parity tests' fixtures)
    fetched_models,
    parity_images,
    ultralytics_python,
    ultralytics_reference,
)

# The same examples on every run: property tests find bugs while they are written, and CI
# never fails on a fresh random draw.
settings.register_profile('repeatable', derandomize=True, database=None, deadline=None)
settings.load_profile('repeatable')

# Before anything can start ROS: loopback discovery only, one domain per run (and per worker).
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
if 'ROS_DOMAIN_ID' not in os.environ:
    os.environ['ROS_DOMAIN_ID'] = str(random.Random(os.getpid()).randint(10, 199))
_worker = os.environ.get('PYTEST_XDIST_WORKER', '')
if _worker.startswith('gw'):
    os.environ['ROS_DOMAIN_ID'] = str((int(os.environ['ROS_DOMAIN_ID']) + int(_worker[2:]) + 1)
                                      % 200 + 1)

# Prepended to `python -c` code: makes ROS unimportable, to prove a module works without it.
BLOCK_ROS = (
    'import sys\n'
    'class Block:\n'
    '    def find_spec(self, name, path=None, target=None):\n'
    '        if name.split(".")[0] in ("rclpy", "sensor_msgs", "std_msgs"):\n'
    '            raise ImportError("ROS is blocked in this test")\n'
    'sys.meta_path.insert(0, Block())\n')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session', autouse=True)
def model_cache(tmp_path_factory):
    """One model cache per test run, so tests never depend on a user's ~/.cache."""
    path = str(tmp_path_factory.mktemp('model-cache'))
    os.environ['HOBOT_NPU_INFER_CACHE'] = path
    return path


@pytest.fixture(scope='session')
def photos(tmp_path_factory):
    """Save the real sample photos as PNG files, by name."""
    import cv2
    from hobot_npu_infer.core.imaging.sample_images import load_sample
    directory = tmp_path_factory.mktemp('photos')
    paths = {}
    for name in ('astronaut', 'camera', 'chelsea', 'coffee'):
        paths[name] = str(directory / f'{name}.png')
        cv2.imwrite(paths[name], load_sample(name))
    return paths


@pytest.fixture(scope='session')
def centerface_pipeline(model_cache):
    from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, PipelineConfig
    return DetectionPipeline.from_config(PipelineConfig(model='centerface'))


@pytest.fixture(scope='session')
def rknn_simulator():
    """
    Return rknn-toolkit2's Python.

    It is made by ``make rknn-sim``; ``make test`` always makes it and points
    HOBOT_NPU_INFER_RKNN_PYTHON at it. Unset only when pytest is run by hand without it.
    """
    python = os.environ.get('HOBOT_NPU_INFER_RKNN_PYTHON', '')
    if not python:
        pytest.skip('HOBOT_NPU_INFER_RKNN_PYTHON is not set: run the tests with `make test`')
    assert os.access(python, os.X_OK), f'{python} missing: run `make rknn-sim`'
    return python
