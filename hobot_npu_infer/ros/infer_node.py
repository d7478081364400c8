"""
infer_node: camera topics in; detections, an optional debug image and /diagnostics out.

The node owns an :class:`InferenceHost`, loads and starts it when constructed and releases it
when destroyed; infer_lifecycle_node drives the same host from its lifecycle transitions.
Between load and start it makes sure no other node of its full name is on the graph
(:class:`NameCheck`: discovery goes on while the model loads).
"""

from hobot_npu_infer.ros.infer_parameters import PARAMETERS
from hobot_npu_infer.ros.inference_host import InferenceHost
from hobot_npu_infer.ros.node_main import NameCheck, node_usage, run_node
from rclpy.node import Node


class InferNode(Node):
    """Loads, subscribes and publishes from construction until destroyed."""

    def __init__(self, **kwargs):
        super().__init__('infer_node', allow_undeclared_parameters=True, **kwargs)
        self.name_check = NameCheck(self)
        self.host = InferenceHost(self)
        self.host.load()
        self.name_check.wait()  # nothing subscribed or published before this
        self.host.start()
        self.name_check.watch()
        self.get_logger().info(self.host.settings.summary)

    def destroy_node(self):
        self.host.release()
        return super().destroy_node()


def main(args=None):
    raise SystemExit(run_node(InferNode, args, threads=1, usage=node_usage(
        'infer_node',
        'Runs a model on camera image topics; publishes detections and /diagnostics.',
        PARAMETERS)))


if __name__ == '__main__':
    main()
