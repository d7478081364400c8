"""
Where the rknn-toolkit2 simulator runs.

In this process when the toolkit imports here, else in the toolkit's own Python
(``make rknn-sim`` makes ``.venv-rknn``) behind a pipe.
"""

import importlib.util
import os
import subprocess
import tempfile
from typing import Dict, List, Optional, Union

from hobot_npu_infer.core.backends.rknn import simulator_worker as worker
from hobot_npu_infer.core.errors import BackendError
from hobot_npu_infer.core.telemetry.rolling_stats import process_rss_mb
import numpy as np

PYTHON_ENV = 'HOBOT_NPU_INFER_RKNN_PYTHON'


class SimulatorProcess:
    """
    A worker process running :func:`rknn_simulator_worker.serve`, one model per process.

    One request at a time (its RknnModel serialises the runs).
    """

    def __init__(self, python: str):
        if not os.access(python, os.X_OK):
            raise BackendError(f'rknn simulator Python {python} does not exist or is not '
                               f'executable; run `make rknn-sim` to create .venv-rknn')
        self._log = tempfile.TemporaryFile(prefix='hobot-npu-rknn-log-')
        self._process = subprocess.Popen(
            [python, '-I', '-u', worker.__file__], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log)

    @property
    def pid(self) -> int:
        return self._process.pid

    def _request(self, header: Dict, arrays=()) -> tuple:
        try:
            worker.send_message(self._process.stdin, header, arrays)
            reply, outputs = worker.receive_message(self._process.stdout)
        except (EOFError, BrokenPipeError, OSError):
            raise BackendError(f'the rknn simulator process exited ({self._log_tail()})') \
                from None
        if not reply.get('ok'):
            raise BackendError(f'rknn simulator: {reply.get("error")}')
        return reply, outputs

    def build(self, **args) -> Dict:
        return self._request({'op': 'build', 'args': args})[0]

    def run(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        return self._request({'op': 'run'}, arrays)[1]

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self._request({'op': 'close'})
            except BackendError:
                pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            stream.close()
        self._log.close()

    def _log_tail(self) -> str:
        """Return the simulator's last log line, the one that usually says what went wrong."""
        self._log.seek(0)
        lines = [ln.strip() for ln in self._log.read().decode(errors='replace').splitlines()
                 if ln.strip()]
        return lines[-1][:200] if lines else f'exit code {self._process.poll()}'


def toolkit_in_process() -> bool:
    return importlib.util.find_spec('rknn') is not None and \
        importlib.util.find_spec('rknn.api') is not None


def open_simulator(python: str = '') -> Union[SimulatorProcess, worker.SimulatorSession]:
    """
    Open a simulator session.

    In the toolkit's Python from the option or $HOBOT_NPU_INFER_RKNN_PYTHON; else in-process.
    """
    python = python or os.environ.get(PYTHON_ENV, '')
    if python:
        return SimulatorProcess(python)
    if toolkit_in_process():
        return worker.SimulatorSession()
    raise BackendError(f'backend rknn needs rknn-toolkit2 to build and simulate .onnx models on '
                       f'this machine: run `make rknn-sim` and set {PYTHON_ENV}=.venv-rknn/bin/'
                       f'python (or the backend option simulator_python)')


def resident_mb(session: Union[SimulatorProcess, worker.SimulatorSession]) -> float:
    """Resident memory of the process the simulator runs in."""
    pid: Optional[int] = getattr(session, 'pid', None)
    return process_rss_mb(pid or 'self')
