"""
Rockchip NPUs (RK3588, RK3576, RK356x): rknnlite on the board, rknn-toolkit2's simulator on x86.

On a board a ``.rknn`` file runs through ``rknnlite.api.RKNNLite``, one runtime per NPU core by
default (RK3588: NPU_CORE_0/1/2). On a PC an ``.onnx`` file is built for the target chip by
rknn-toolkit2 (fp16, or int8 with a calibration set of real images) and run in its simulator,
which can only run a model built in the same process. The toolkit needs numpy<2 and torch, so it
usually lives in its own environment and runs behind a pipe (:mod:`rknn_simulator`).
"""

import importlib.util
import os
import tempfile
import threading
from typing import Dict, List, Optional, Sequence, Tuple

from hobot_npu_infer.core.backends.base import (
    Backend,
    Inputs,
    Model,
    register_backend,
    require_file,
)
from hobot_npu_infer.core.backends.boards import (
    Board,
    detect_board,
    ROCKCHIP_NPU_CORES,
    rockchip_npu_load,
)
from hobot_npu_infer.core.backends.rknn.model_file import (
    read_build_record,
    read_rknn_tensors,
    write_build_record,
)
from hobot_npu_infer.core.backends.rknn.simulator import open_simulator, resident_mb
from hobot_npu_infer.core.backends.tensors import BatchCapability, guess_layout, TensorSpec
from hobot_npu_infer.core.errors import BackendError, ConfigError, ModelLoadError
from hobot_npu_infer.core.imaging.geometry import parse_size
from hobot_npu_infer.core.models.onnx_files import read_onnx
from hobot_npu_infer.core.telemetry.rolling_stats import process_rss_mb
import numpy as np

CORE_MASKS = {'auto': 0, 'core0': 1, 'core1': 2, 'core2': 4, 'core0_1': 3, 'core0_1_2': 7}
DEFAULT_SIMULATOR_SIZE = (640, 640)


def core_masks(spec: str, soc: str, runtimes: int) -> List[int]:
    """
    Return the core mask of each runtime.

    'auto' pins runtime i to core i (mod the core count) on multi-core chips; a name, or a comma
    list with one name per runtime, is used as given.
    """
    cores = ROCKCHIP_NPU_CORES[soc]
    names = [n.strip() for n in (spec or 'auto').split(',')]
    for name in names:
        if name not in CORE_MASKS:
            raise BackendError(f'unknown rknn core_mask {name!r}; use one of '
                               f'{", ".join(CORE_MASKS)}')
        if CORE_MASKS[name] >> cores:
            raise BackendError(f'rknn core_mask {name} names a core {soc} does not have '
                               f'({soc} has {cores} NPU core{"s" if cores > 1 else ""})')
    if len(names) == 1:
        if names[0] == 'auto':
            return [1 << (i % cores) if cores > 1 else 0 for i in range(runtimes)]
        return [CORE_MASKS[names[0]]] * runtimes
    if len(names) != runtimes:
        raise BackendError(f'rknn core_mask lists {len(names)} masks for {runtimes} runtimes')
    return [CORE_MASKS[n] for n in names]


class RknnModel(Model):
    def __init__(self, name: str, runner, inputs: List[TensorSpec], outputs: List[TensorSpec],
                 memory_mb: float, where: str):
        self.name, self.inputs, self.outputs = name, inputs, outputs
        self.batch = BatchCapability(inputs[0].static_dim(0))
        self.memory_mb = memory_mb  # in the process it runs in (the simulator's, on x86)
        self.where = where  # 'board' or 'simulator'
        self.vendor_memory_report = (
            'unavailable: rknn eval_memory needs rknn-toolkit2 with a board attached'
            if where == 'simulator' else 'unavailable: rknnlite has no memory report')
        self._runner = runner
        self._lock = threading.Lock()  # one runtime object is not to be entered by two threads

    def run(self, inputs: Inputs) -> List[np.ndarray]:
        feed = self.input_dict(inputs)
        arrays = []
        for spec in self.inputs:
            array = feed[spec.name]
            if array.shape != tuple(spec.shape) or array.dtype != spec.dtype:
                raise BackendError(f'rknn model {self.name} input {spec.name} wants '
                                   f'{spec.describe()}, got {array.dtype.name} {array.shape}')
            arrays.append(array)
        with self._lock:
            return self._runner.run(arrays)

    def close(self) -> None:
        with self._lock:
            self._runner.close()


class _LiteRunner:
    """One RKNNLite context on the board; images go NHWC, a trunk's features NCHW."""

    def __init__(self, lite):
        self._lite = lite
        self.formats: List[str] = []

    def run(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        formats = self.formats or ['nhwc'] * len(arrays)
        outputs = self._lite.inference(inputs=arrays, data_format=formats)
        if outputs is None:  # RKNNLite logs the cause and returns None
            raise BackendError('rknn inference failed on the NPU (rknnlite returned no outputs)')
        return [np.asarray(o) for o in outputs]

    def close(self) -> None:
        self._lite.release()


@register_backend('rknn')
class RknnBackend(Backend):
    def __init__(self, target: str = '', core_mask: str = 'auto', quantize: bool = False,
                 dataset: str = '', batch_size: int = 0, input_size: str = '',
                 mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                 channel_order: str = 'rgb', simulator_python: str = '', root: str = '/'):
        self._root = root
        self.board: Board = detect_board(root)
        self.target = str(target or (self.board.soc if self.board.vendor == 'rockchip'
                                     else 'rk3588')).lower()
        if self.target not in ROCKCHIP_NPU_CORES:
            raise BackendError(f'unknown rknn target {target!r}; use one of '
                               f'{", ".join(ROCKCHIP_NPU_CORES)}')
        self.core_mask = str(core_mask)
        self._mask_for(0)  # an unknown or absent core fails here
        if type(batch_size) is not int or not 0 <= batch_size <= 64:
            raise BackendError(f'rknn batch_size must be an integer within 0..64 (0: the '
                               f'compiled batch rknn_convert recorded, else 1), got '
                               f'{batch_size!r}')
        if len(mean) != 3 or len(std) != 3 or any(float(s) == 0 for s in std):
            raise BackendError('rknn mean and std need three values each; std must not be 0')
        if channel_order not in ('rgb', 'bgr'):
            raise BackendError(f"rknn channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        self.quantize = bool(quantize)
        self.dataset = str(dataset)
        if self.quantize and not self.dataset:
            raise BackendError('rknn quantize needs dataset: a directory or list of real images '
                               'to calibrate int8 with')
        self.batch_size = batch_size
        self.input_size = parse_size(str(input_size)) if input_size else None
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        self.channel_order = channel_order
        self._simulator_python = simulator_python
        self._built_shapes: Dict[str, List[int]] = {}  # output shapes of the models built so far

    def _mask_for(self, runtime: int) -> int:
        """Runtime ``runtime``'s core mask; a comma list needs one name per runtime."""
        listed = len(self.core_mask.split(','))
        return core_masks(self.core_mask, self.target, max(runtime + 1, listed))[runtime]

    @property
    def default_runtimes(self) -> int:
        """One runtime per NPU core on a board; one simulator."""
        return self.board.npu_cores if self.board.vendor == 'rockchip' else 1

    def npu_load(self) -> Optional[Dict[str, float]]:
        return rockchip_npu_load(self._root)

    def load(self, path: str, runtime: int = 0) -> List[Model]:
        require_file(path)
        extension = os.path.splitext(path)[1].lower()
        if extension == '.rknn':
            return [self._load_on_board(path, runtime)]
        if extension == '.onnx':
            return [self._load_in_simulator(path)]
        raise ModelLoadError(f'backend rknn runs .rknn files (on a board) or builds .onnx files '
                             f'(for the simulator), not {os.path.basename(path)}')

    def _load_on_board(self, path: str, runtime: int) -> Model:
        if importlib.util.find_spec('rknnlite') is None:
            raise BackendError(
                f'{os.path.basename(path)} is a .rknn file, which runs only on a Rockchip board '
                f'with rknn-toolkit-lite2 (rknnlite); the x86 simulator runs only models it '
                f'builds itself, so give it the .onnx file')
        from rknnlite.api import RKNNLite
        before = process_rss_mb()
        mask = self._mask_for(runtime)
        lite = RKNNLite(verbose=False)
        if lite.load_rknn(path) != 0:
            lite.release()
            raise ModelLoadError(f'rknnlite cannot load {path}: not a valid .rknn file')
        if lite.init_runtime(core_mask=mask) != 0:
            lite.release()
            raise ModelLoadError(f'rknnlite init_runtime failed for {path} with core_mask '
                                 f'{mask} (is the model built for {self.target}?)')
        runner = _LiteRunner(lite)
        try:
            inputs = self._board_inputs(path)
            runner.formats = ['nhwc' if s.layout == 'NHWC' else 'nchw' for s in inputs]
            # warm-up, and the output shapes
            outputs = runner.run([np.zeros(s.shape, s.dtype) for s in inputs])
        except BaseException:
            runner.close()
            raise
        names = [t.name for t in read_rknn_tensors(path, outputs=True)] or \
            [f'output{i}' for i in range(len(outputs))]
        specs = [TensorSpec(n, o.shape, o.dtype, guess_layout(o.shape))
                 for n, o in zip(names, outputs)]
        return RknnModel(_stem(path), runner, inputs, specs, process_rss_mb() - before, 'board')

    def _board_inputs(self, path: str) -> List[TensorSpec]:
        """
        Return the inputs as the file's table gives them, batch as built.

        An image is NHWC uint8 (H and W from the file, or input_size), a trunk's features (a
        head's input) float32.
        """
        tensors = read_rknn_tensors(path, outputs=False)
        batch = self.batch_size or int(read_build_record(path).get('rknn_batch_size', 1))
        if self.input_size:
            (w, h), name = self.input_size, tensors[0].name if tensors else 'input'
            return [TensorSpec(name, (batch, h, w, 3), np.dtype(np.uint8), 'NHWC')]
        if not tensors or any(len(t.shape) != 4 for t in tensors):
            raise ModelLoadError(f'cannot read the input size of {path}; set backend option '
                                 f'input_size (e.g. 640x640)')
        specs = []
        for tensor in tensors:
            channels = tensor.shape[3 if tensor.layout == 'nhwc' else 1]
            if channels == 3:
                w, h = tensor.image_size
                specs.append(TensorSpec(tensor.name, (batch, h, w, 3), np.dtype(np.uint8),
                                        'NHWC'))
            else:
                specs.append(TensorSpec(tensor.name, (batch,) + tensor.shape[1:],
                                        np.dtype(np.float32), tensor.layout.upper()))
        return specs

    def convert(self, path: str, rknn_path: str) -> Model:
        """
        Build ``path`` (.onnx) for the target and write the .rknn file a board runs.

        The built model is kept running in the simulator (to check it before copying it to the
        board).
        """
        require_file(path)
        model = self._load_in_simulator(path, os.path.abspath(rknn_path))
        write_build_record(rknn_path, {
            'source': os.path.basename(path), 'target': self.target,
            'rknn_batch_size': model.batch.fixed_size, 'quantized': self.quantize,
            'input': model.inputs[0].describe(),
            # what the model normalises inside, so the board feeds it plain uint8 pixels
            'mean': self.mean, 'std': self.std, 'channel_order': self.channel_order,
            # the export's own metadata (Ultralytics: task, names, imgsz), read back on the board
            'metadata': {p.key: p.value for p in read_onnx(path, False).metadata_props}})
        return model

    def _load_in_simulator(self, path: str, export_path: str = '') -> Model:
        size = self._simulator_size(path)
        session = open_simulator(self._simulator_python)
        try:
            before = resident_mb(session)
            with tempfile.TemporaryDirectory(prefix='hobot-npu-calibration-') as directory:
                dataset = self._calibration_list(size, directory) if self.quantize else None
                built = session.build(onnx_path=os.path.abspath(path), target=self.target,
                                      quantize=self.quantize, dataset=dataset,
                                      batch_size=self.batch_size or 1, input_size=list(size),
                                      mean=self.mean, std=self.std, export_path=export_path,
                                      known_shapes=self._built_shapes)
            after = resident_mb(session)
        except BaseException:
            session.close()
            raise
        inputs = [TensorSpec(t['name'], tuple(t['shape']), np.dtype(t['dtype']),
                             t['layout'] or None) for t in built['inputs']]
        outputs = [TensorSpec(t['name'], tuple(t['shape']), np.dtype(t['dtype']),
                              guess_layout(t['shape'])) for t in built['outputs']]
        # A head built after its trunk reads the trunk's outputs at the shapes built here.
        self._built_shapes.update({t['name']: list(t['shape']) for t in built['outputs']})
        return RknnModel(_stem(path), session, inputs, outputs, after - before, 'simulator')

    def _simulator_size(self, path: str) -> Tuple[int, int]:
        """(W, H) the model is built at: its own fixed size, else input_size, else 640x640."""
        model = read_onnx(path, load_external_data=False)
        initialisers = {i.name for i in model.graph.initializer}
        image = next((t for t in model.graph.input if t.name not in initialisers), None)
        dims = [d.dim_value if d.HasField('dim_value') else 0
                for d in image.type.tensor_type.shape.dim] if image is not None else []
        if image is not None and image.name in self._built_shapes:
            return self.input_size or DEFAULT_SIMULATOR_SIZE  # a head: its trunk's shapes
        if len(dims) != 4 or dims[1] != 3:
            raise ModelLoadError(f'{path}: the rknn simulator backend builds models whose '
                                 f'first input is a 3-channel NCHW image (or a tensor of a '
                                 f'trunk built before), got {dims}')
        fixed = (dims[3], dims[2])
        if all(fixed):
            if self.input_size and tuple(self.input_size) != fixed:
                raise ConfigError(f'{path} is fixed at {fixed[0]}x{fixed[1]}; input_size '
                                  f'{self.input_size[0]}x{self.input_size[1]} cannot change it')
            return fixed
        return self.input_size or DEFAULT_SIMULATOR_SIZE

    def _calibration_list(self, size: Tuple[int, int], directory: str) -> str:
        """
        Write the calibration images as .npy files listed in the text file rknn.build reads.

        They go through the same letterbox as inference.
        """
        from hobot_npu_infer.core.imaging.image_files import read_image
        from hobot_npu_infer.core.imaging.image_sequences import list_images
        from hobot_npu_infer.core.pipeline.preprocess import PreprocessConfig, Preprocessor
        if os.path.isdir(self.dataset):
            paths = list_images(self.dataset)
        elif self.dataset.endswith('.txt') and os.path.isfile(self.dataset):
            with open(self.dataset) as listing:
                paths = [line.strip() for line in listing if line.strip()]
        else:
            paths = [p for p in self.dataset.split(',') if p]
        if not paths:
            raise ConfigError(f'rknn calibration dataset {self.dataset!r} holds no images')
        # rknn.build reads .npy calibration inputs in the ONNX model's own NCHW layout.
        spec = TensorSpec('calibration', (1, 3, size[1], size[0]), np.dtype(np.uint8), 'NCHW')
        prepare = Preprocessor(PreprocessConfig(input_size=size, channel_order=self.channel_order),
                               spec)
        listed = []
        for i, path in enumerate(paths):
            tensor = prepare.prepare([read_image(path)], 'bgr').tensor
            listed.append(os.path.join(directory, f'{i:05d}.npy'))
            np.save(listed[-1], tensor)
        dataset = os.path.join(directory, 'dataset.txt')
        with open(dataset, 'w') as listing:
            listing.write('\n'.join(listed) + '\n')
        return dataset


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]
