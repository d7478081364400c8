"""Where the package's configuration files are: the source tree, a colcon install or a venv."""

import os
import sys

from hobot_npu_infer.core.errors import ConfigError

PACKAGE = 'hobot_npu_infer'


def config_file(name: str) -> str:
    """Find the path of the configuration file ``name`` (``config/<name>`` in the source tree)."""
    source_tree = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    candidates = [os.path.join(source_tree, 'config', name),  # source tree, editable
                  os.path.join(sys.prefix, 'share', PACKAGE, 'config', name)]  # pip install
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(os.path.join(get_package_share_directory(PACKAGE), 'config', name))
    except Exception:  # not a ROS install, or the package is not in the ament index
        pass
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise ConfigError(f'configuration file {name} not found (looked in {", ".join(candidates)})')
