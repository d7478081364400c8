"""
TROS's message packages, hbm_img_msgs and ai_msgs, built from their public definitions.

They exist only on D-Robotics boards. test/tros_msgs holds their .msg files (D-Robotics/
hobot_msgs) and build_tros_msgs.py, which generates and compiles them with the rosidl
generators of the pip environment: real rclpy message classes with real type support, so
they serialise as on a board and travel over DDS. The build takes about 10 s, once per run.
A test process imports them only inside ``tros_messages``: everywhere else they are absent,
as on any machine but a board.
"""

import importlib
import os
import subprocess
import sys

import pytest

TEST_DIR = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(TEST_DIR, 'tros_msgs', 'build_tros_msgs.py')
PACKAGES = ('hbm_img_msgs', 'ai_msgs')


@pytest.fixture(scope='session')
def tros_msgs(tmp_path_factory):
    """Build the two packages; return the directory to put on PYTHONPATH to import them."""
    prefix = tmp_path_factory.mktemp('tros_msgs')
    built = subprocess.run([sys.executable, BUILD, str(prefix / 'install')],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    return str(prefix / 'install' / 'python')


@pytest.fixture(scope='module')
def tros_messages(tros_msgs):
    """
    Yield (hbm_img_msgs.msg, ai_msgs.msg), importable in this process for the module's tests.

    Afterwards they are absent again: off the path and out of ``sys.modules``.
    """
    sys.path.insert(0, tros_msgs)
    try:
        yield tuple(importlib.import_module(f'{name}.msg') for name in PACKAGES)
    finally:
        sys.path.remove(tros_msgs)
        for name in [m for m in sys.modules if m.split('.')[0] in PACKAGES]:
            del sys.modules[name]


def with_tros_msgs(tros_msgs: str, env: dict) -> dict:
    """Return ``env`` for a child process that imports the two packages."""
    paths = [tros_msgs, env.get('PYTHONPATH') or os.environ.get('PYTHONPATH', '')]
    return {**env, 'PYTHONPATH': os.pathsep.join(p for p in paths if p)}
