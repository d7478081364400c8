"""The one interface every inference backend implements, and the registry that names them."""

from abc import ABC, abstractmethod
import os
from typing import Dict, List, Mapping, Optional, Sequence, Union

from hobot_npu_infer.core.backends.tensors import BatchCapability, TensorSpec
from hobot_npu_infer.core.errors import BackendError, ConfigError, ModelNotFoundError
from hobot_npu_infer.core.implementations import Registry
import numpy as np

Inputs = Union[Mapping[str, np.ndarray], Sequence[np.ndarray]]


class Model(ABC):
    """One runnable model: a file may hold several (packed NPU files)."""

    name: str
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    batch: BatchCapability
    memory_mb: Optional[float] = None  # resident memory the model added, where the backend knows
    vendor_memory_report = ''  # the vendor tool's own memory figures, or why there are none

    @abstractmethod
    def run(self, inputs: Inputs) -> List[np.ndarray]:
        """Run one batch; inputs by name or in input order; outputs in ``self.outputs`` order."""

    def close(self) -> None:
        """Release runtime resources; the default has none to release."""

    def input_dict(self, inputs: Inputs) -> Dict[str, np.ndarray]:
        if isinstance(inputs, Mapping):
            return dict(inputs)
        if len(inputs) != len(self.inputs):
            raise BackendError(
                f'model {self.name!r} takes {len(self.inputs)} input(s), got {len(inputs)}')
        return {spec.name: array for spec, array in zip(self.inputs, inputs)}


def select_model(models: List[Model], name: str, path: str, user: str = '') -> Model:
    """
    Return the model called ``name`` of those the file at ``path`` holds; unnamed, its only one.

    A packed NPU file holds several models, so every caller chooses by name the same way and
    the error lists what the file holds; ``user`` (a head, say) is named in it when given.
    """
    held = ', '.join(m.name for m in models)
    wanted_by = f' (for {user})' if user else ''
    if not name:
        if len(models) > 1:
            raise ConfigError(f'{path} holds {len(models)} models ({held}); choose one by '
                              f'model_name{wanted_by}')
        return models[0]
    for model in models:
        if model.name == name:
            return model
    raise ConfigError(f'{path} holds no model named {name!r}; it holds {held}{wanted_by}')


class Backend(ABC):
    """Loads model files into :class:`Model` objects."""

    name: str
    default_runtimes = 1  # runtimes a pipeline loads when not told (an NPU: one per core)

    def npu_load(self) -> Optional[Dict[str, float]]:
        """Per-core NPU load in percent where the board exposes it; None elsewhere."""
        return None

    @abstractmethod
    def load(self, path: str, runtime: int = 0) -> List[Model]:
        """
        Load every model in the file at ``path``, as engine instance ``runtime`` of a pool.

        An NPU backend pins instances to cores by ``runtime``; others may ignore it.

        Raises ModelNotFoundError when the file is missing and ModelLoadError when it is unusable.
        """


def require_file(path: str) -> None:
    """Every backend's first check: the same one-line error for a model file that is not there."""
    if not os.path.isfile(path):
        raise ModelNotFoundError(f'model file not found: {path}')


BACKENDS: Registry[Backend] = Registry('backend', BackendError)
register_backend = BACKENDS.register
backend_names = BACKENDS.names
create_backend = BACKENDS.create
