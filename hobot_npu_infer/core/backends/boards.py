"""
Which NPU board this is, and how busy its NPU is, read from the kernel's own files.

Every path is taken under ``root`` so tests can lay out a board's files in a temporary directory.
"""

from dataclasses import dataclass
import os
import re
from typing import Dict, Optional

ROCKCHIP_NPU_CORES = {'rk3588': 3, 'rk3576': 2, 'rk3566': 1, 'rk3568': 1, 'rk3562': 1}
COMPATIBLE = 'proc/device-tree/compatible'
RKNPU_LOAD = 'sys/kernel/debug/rknpu/load'
BPU_SYSFS = 'sys/devices/system/bpu'


@dataclass(frozen=True)
class Board:
    vendor: str  # 'rockchip', 'd-robotics' or '' (no NPU board found)
    soc: str  # 'rk3588', ... ; 'bpu' for D-Robotics boards
    evidence: str  # what was read, for the log line that explains a choice

    @property
    def npu_cores(self) -> int:
        if self.vendor == 'rockchip':
            return ROCKCHIP_NPU_CORES[self.soc]
        return 1


def _read(root: str, relative: str) -> Optional[str]:
    try:
        with open(os.path.join(root, relative), 'rb') as file:
            return file.read().decode(errors='replace')
    except OSError:
        return None


def detect_board(root: str = '/') -> Board:
    compatible = _read(root, COMPATIBLE) or ''
    for entry in compatible.split('\0'):
        # RK3588S boards (Orange Pi 5, Rock 5C) name only 'rockchip,rk3588s': the same NPU.
        match = re.fullmatch(r'rockchip,(rk35\d\d)s?', entry.strip())
        if match and match.group(1) in ROCKCHIP_NPU_CORES:
            return Board('rockchip', match.group(1), f'{entry.strip()} in /{COMPATIBLE}')
    if os.path.isdir(os.path.join(root, BPU_SYSFS)):
        return Board('d-robotics', 'bpu', f'/{BPU_SYSFS} exists')
    return Board('', '', f'no Rockchip SoC in /{COMPATIBLE} and no /{BPU_SYSFS}')


def rockchip_npu_load(root: str = '/') -> Optional[Dict[str, float]]:
    """
    Read the per-core NPU load in percent from rknpu's debug file.

    The file says 'NPU load:  Core0: 12%, ...' or 'NPU load:  30%' on one-core chips; None
    where the file is absent or unreadable.
    """
    text = _read(root, RKNPU_LOAD)
    if text is None:
        return None
    cores = re.findall(r'(Core\d+):\s*(\d+)%', text)
    if cores:
        return {name.lower(): float(value) for name, value in cores}
    single = re.search(r'(\d+)%', text)
    return {'core0': float(single.group(1))} if single else None


def bpu_load(root: str = '/') -> Optional[Dict[str, float]]:
    """Per-core BPU usage in percent from the BPU driver's sysfs ``bpu*/ratio`` files."""
    directory = os.path.join(root, BPU_SYSFS)
    try:
        cores = sorted(n for n in os.listdir(directory) if re.fullmatch(r'bpu\d+', n))
    except OSError:
        return None
    load = {}
    for core in cores:
        text = _read(root, f'{BPU_SYSFS}/{core}/ratio')
        if text is not None and text.strip().isdigit():
            load[core] = float(text.strip())
    return load or None
