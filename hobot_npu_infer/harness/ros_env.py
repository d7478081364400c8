"""
The environment every ROS process started by this package's tools runs in.

DDS discovery stays on loopback with a domain of its own for each run, and Fast DDS uses a
shared-memory segment large enough for camera frames. Set before rclpy starts (rcl reads the
environment at init) and inherited by every child process.
"""

import os
import random
from typing import Dict, MutableMapping, Optional

from hobot_npu_infer.harness.config_files import config_file

PROFILE = 'fastdds_shm.xml'


def loopback_environment(env: Optional[MutableMapping[str, str]] = None,
                         domain_id: Optional[int] = None) -> MutableMapping[str, str]:
    """
    Set (in ``env``, default ``os.environ``) and return the loopback DDS environment.

    An existing ROS_DOMAIN_ID is kept unless ``domain_id`` is given; a missing one is drawn at
    random so concurrent runs do not see each other.
    """
    env = os.environ if env is None else env
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env.pop('ROS_LOCALHOST_ONLY', None)  # deprecated in Jazzy; the range above replaces it
    if domain_id is not None:
        env['ROS_DOMAIN_ID'] = str(domain_id)
    elif not env.get('ROS_DOMAIN_ID'):
        env['ROS_DOMAIN_ID'] = str(random.SystemRandom().randint(10, 199))
    profile = config_file(PROFILE)
    env['FASTRTPS_DEFAULT_PROFILES_FILE'] = profile
    env['FASTDDS_DEFAULT_PROFILES_FILE'] = profile
    return env


def child_environment(**extra: str) -> Dict[str, str]:
    """Return a copy of this process's (loopback) environment for a child process."""
    env = dict(loopback_environment(dict(os.environ)))
    env.update(extra)
    return env
