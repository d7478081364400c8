"""Tensor descriptions shared by every backend, so pre-processing and batching need no backend."""

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

Dim = Union[int, str, None]
"""A dimension: a fixed size, or a symbolic name / None when it is dynamic."""

LAYOUTS = ('NCHW', 'NHWC')
NV12 = 'NV12'
"""The layout of an NV12 image input: (N, H*3/2, W) uint8, see core/nv12.py."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: Tuple[Dim, ...]
    dtype: np.dtype
    layout: Optional[str] = None  # 'NCHW', 'NHWC', NV12, or None when not an image tensor

    def is_dynamic(self, axis: int) -> bool:
        return not isinstance(self.shape[axis], int) or self.shape[axis] <= 0

    def static_dim(self, axis: int) -> Optional[int]:
        return None if self.is_dynamic(axis) else int(self.shape[axis])

    @property
    def image_size(self) -> Tuple[Optional[int], Optional[int]]:
        """(width, height) of an image tensor; None where that dimension is dynamic."""
        if self.layout == 'NHWC':
            return self.static_dim(2), self.static_dim(1)
        if self.layout == NV12:
            rows = self.static_dim(1)
            return self.static_dim(2), None if rows is None else rows * 2 // 3
        return self.static_dim(3), self.static_dim(2)

    def describe(self) -> str:
        dims = ','.join('?' if d is None else str(d) for d in self.shape)
        layout = f' {self.layout}' if self.layout else ''
        return f'{self.name} [{dims}] {np.dtype(self.dtype).name}{layout}'


@dataclass(frozen=True)
class BatchCapability:
    """How many images one run takes: any number (dynamic) or exactly a compiled size."""

    fixed_size: Optional[int] = None

    @property
    def dynamic(self) -> bool:
        return self.fixed_size is None

    def accepts(self, n: int) -> bool:
        return self.dynamic or n == self.fixed_size

    def describe(self) -> str:
        return 'dynamic' if self.dynamic else f'fixed {self.fixed_size}'


def guess_layout(shape: Tuple[Dim, ...]) -> Optional[str]:
    """Image layout from a 4-D shape: channels of 1, 3 or 4 in axis 1 mean NCHW, in axis 3 NHWC."""
    if len(shape) != 4:
        return None
    if shape[1] in (1, 3, 4):
        return 'NCHW'
    if shape[3] in (1, 3, 4):
        return 'NHWC'
    return 'NCHW'
