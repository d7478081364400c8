"""
The linters an ament_python package ships as tests: ament_flake8 and ament_pep257.

Both run with ament's own configuration (line length 99, google import order, single quotes;
the ament pydocstyle convention), over the package, the tests, the launch files and setup.py.
Each runs in a process of its own: flake8 forks its workers, and a fork of this process once
ROS tests have started DDS threads in it can crash.
"""

import subprocess
import sys

from conftest import REPO

PATHS = ['hobot_npu_infer', 'launch', 'test', 'setup.py']


def run_linter(module: str) -> subprocess.CompletedProcess:
    code = f'import sys; from {module} import main; sys.exit(main(argv={PATHS!r}))'
    return subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def findings(output: str):
    return [line for line in output.splitlines()
            if line.startswith(tuple(PATHS)) and ':' in line]


def test_flake8():
    result = run_linter('ament_flake8.main')
    assert result.returncode == 0, '\n'.join(findings(result.stdout)) or result.stderr


def test_pep257():
    result = run_linter('ament_pep257.main')
    assert result.returncode == 0, '\n'.join(findings(result.stdout)) or result.stderr
