"""infer_lifecycle_node: infer_node as a managed (lifecycle) node, with the same parameters.

- configure: validate the parameters, load the model and warm it up (one run on a blank frame),
  create the publishers (lifecycle publishers for the outputs); no subscription yet;
- activate: start the stream runner, subscribe to the inputs, publish results and /diagnostics;
- deactivate: unsubscribe and stop the runner threads; the model stays loaded, so a later
  activate resumes at once with the same model;
- cleanup: release the model, the publishers and the threads (back to unconfigured);
- shutdown, or an error in a transition: release everything.

A configure that fails (a bad parameter, a model that does not load) logs one line and leaves
the node unconfigured. Parameters that infer_node fixes at start-up can be changed here while
the node is unconfigured (e.g. ``model`` after a failed configure), and are read at configure.
"""

import dataclasses
import functools
import traceback
from collections.abc import Callable

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from ..core.errors import InferError
from .infer_node import PARAMETERS, InferPieces, current_values
from .node_main import run_node
from .parameters import InvalidParameter, ParamSpec, declare

SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE
ERROR = TransitionCallbackReturn.ERROR


def transition(name: str) -> Callable:
    """A transition callback that logs an unexpected exception with its traceback and returns
    ERROR (rclpy would turn it into ERROR silently); on_error then releases everything."""
    def wrap(method):
        @functools.wraps(method)
        def run(self, state: LifecycleState) -> TransitionCallbackReturn:
            try:
                return method(self, state)
            except Exception:  # noqa: BLE001 (a bug: logged whole, then on_error cleans up)
                self.get_logger().error(f'{name} failed unexpectedly:\n{traceback.format_exc()}')
                return ERROR
        return run
    return wrap


class InferLifecycleNode(InferPieces, LifecycleNode):
    MANAGED = True

    def __init__(self, **kwargs):
        super().__init__('infer_node', **kwargs)
        self._init_pieces()
        self._configure_time = set()
        declare(self, self._specs(PARAMETERS), self._apply)
        self.get_logger().info('unconfigured: configure to load the model')

    # -- parameters: those infer_node fixes at start-up change here while unconfigured --------

    def _specs(self, specs: list[ParamSpec]) -> list[ParamSpec]:
        self._configure_time |= {s.name for s in specs if s.read_only}
        return [dataclasses.replace(s, read_only=False) for s in specs]

    def _apply(self, name: str, value) -> None:
        if name in self._configure_time and self.loaded:
            raise InferError('read when configuring: change it while unconfigured (cleanup '
                             'first)')
        super()._apply(name, value)

    # -- transitions ----------------------------------------------------------------------

    @transition('configure')
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            load_s = self._load(current_values(self, self._specs(PARAMETERS)))
        except (InvalidParameter, InferError, ValueError) as exc:
            self._release()
            self.get_logger().error(f'configure failed: {exc}')
            return FAILURE
        self.get_logger().info(f'configured: {self._settings["summary"]}; loaded and warmed '
                               f'up in {load_s:.2f} s; not subscribed until activated')
        return super().on_configure(state)

    @transition('activate')
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers
        self._start()
        self.get_logger().info(f'activated: subscribed to {", ".join(self.sources)}')
        return result

    @transition('deactivate')
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        self.get_logger().info('deactivated: unsubscribed, the model stays loaded')
        return super().on_deactivate(state)

    @transition('cleanup')
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info('cleaned up: model and publishers released')
        return super().on_cleanup(state)

    @transition('shutdown')
    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info('shut down: everything released')
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().error(f'a transition from {state.label} failed: everything '
                                f'released, back to unconfigured')
        return SUCCESS


def main(args=None):
    raise SystemExit(run_node(InferLifecycleNode, args, threads=1))


if __name__ == '__main__':
    main()
