"""
infer_lifecycle_node: infer_node as a managed (lifecycle) node, with the same parameters.

- configure: validate the parameters, load the model and warm it up (one run on a blank frame),
  create the publishers (lifecycle publishers for the outputs); no subscription yet;
- activate: start the stream runner, subscribe to the inputs, publish results and /diagnostics;
- deactivate: unsubscribe and stop the runner threads; the model stays loaded, so a later
  activate resumes at once with the same model;
- cleanup: release the model, the publishers and the threads (back to unconfigured);
- shutdown, or an error in a transition: release everything.

At start-up it makes sure no other node of its full name is on the graph (:class:`NameCheck`).
A configure that fails (a bad parameter, a model that does not load) logs one line and leaves
the node unconfigured. Parameters that infer_node fixes at start-up can be changed here while
the node is unconfigured (e.g. ``model`` after a failed configure), and are read at configure.
"""

from collections.abc import Callable
import functools
import traceback

from hobot_npu_infer.core.errors import InferError
from hobot_npu_infer.ros.infer_parameters import PARAMETERS
from hobot_npu_infer.ros.inference_host import InferenceHost
from hobot_npu_infer.ros.node_main import NameCheck, node_usage, run_node
from hobot_npu_infer.ros.param_specs import InvalidParameter
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE
ERROR = TransitionCallbackReturn.ERROR


def transition(name: str) -> Callable:
    """
    Decorate a transition callback to log an unexpected exception and return ERROR.

    The exception is logged with its traceback (rclpy would turn it into ERROR silently);
    on_error then releases everything.
    """
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


class InferLifecycleNode(LifecycleNode):
    """infer_node's host driven by lifecycle transitions."""

    def __init__(self, **kwargs):
        super().__init__('infer_node', allow_undeclared_parameters=True, **kwargs)
        self.name_check = NameCheck(self)
        self.host = InferenceHost(self, managed=True)
        self.name_check.wait()  # before its lifecycle services answer anyone
        self.name_check.watch()
        self.get_logger().info('unconfigured: configure to load the model')

    @transition('configure')
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            load_s = self.host.load()
        except (InvalidParameter, InferError, ValueError) as exc:
            self.host.release()
            self.get_logger().error(f'configure failed: {exc}')
            return FAILURE
        self.get_logger().info(f'configured: {self.host.settings.summary}; loaded and warmed '
                               f'up in {load_s:.2f} s; not subscribed until activated')
        return super().on_configure(state)

    @transition('activate')
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers
        self.host.start()
        self.get_logger().info(f'activated: subscribed to {", ".join(self.host.sources)}')
        return result

    @transition('deactivate')
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.host.stop()
        self.get_logger().info('deactivated: unsubscribed, the model stays loaded')
        return super().on_deactivate(state)

    @transition('cleanup')
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.host.release()
        self.get_logger().info('cleaned up: model and publishers released')
        return super().on_cleanup(state)

    @transition('shutdown')
    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.host.release()
        self.get_logger().info('shut down: everything released')
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.host.release()
        self.get_logger().error(f'a transition from {state.label} failed: everything '
                                f'released, back to unconfigured')
        return SUCCESS

    def destroy_node(self):
        self.host.release()
        return super().destroy_node()


def main(args=None):
    raise SystemExit(run_node(InferLifecycleNode, args, threads=1, usage=node_usage(
        'infer_lifecycle_node', 'infer_node as a managed (lifecycle) node: configure loads the '
        'model, activate subscribes.', PARAMETERS)))


if __name__ == '__main__':
    main()
