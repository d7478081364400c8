"""The inference core must work with no ROS installed."""

import ast
import os
import subprocess
import sys

from conftest import BLOCK_ROS, REPO

CORE = os.path.join(REPO, 'hobot_npu_infer', 'core')


def imported_modules(path):
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def test_no_module_in_the_core_imports_ros():
    offenders = []
    for root, _, files in os.walk(CORE):
        for name in files:
            if name.endswith('.py'):
                for module in imported_modules(os.path.join(root, name)):
                    top = module.split('.')[0]
                    if top in ('rclpy', 'rcl_interfaces') or top.endswith('_msgs'):
                        offenders.append(f'{name}: {module}')
    assert offenders == []


def test_core_runs_with_rclpy_unimportable(photos):
    code = BLOCK_ROS + (
        'from hobot_npu_infer.tools import detect\n'
        f'sys.exit(detect.main([{photos["astronaut"]!r}, "--json"]))\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"class_name": "face"' in proc.stdout
