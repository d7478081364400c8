"""
The linters an ament_python package ships as tests: ament_flake8 and ament_pep257.

Both run with ament's own configuration (line length 99, google import order, single quotes;
the ament pydocstyle convention), over the package, the tests, the launch files and setup.py.
"""

from ament_flake8.main import main_with_errors as flake8_main
from ament_pep257.main import main as pep257_main
from conftest import REPO
import pytest

PATHS = ['hobot_npu_infer', 'launch', 'test', 'setup.py']


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


@pytest.mark.usefixtures('in_repo')
def test_flake8():
    rc, errors = flake8_main(argv=PATHS)
    assert rc == 0, f'{len(errors)} flake8 errors:\n' + '\n'.join(errors)


@pytest.mark.usefixtures('in_repo')
def test_pep257(capsys):
    rc = pep257_main(argv=PATHS)
    found = [line for line in capsys.readouterr().out.splitlines()
             if ': D' in line]
    assert rc == 0, f'{len(found)} pep257 errors:\n' + '\n'.join(found)
