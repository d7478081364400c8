"""
A mask lands where it belongs in the source image, through the letterbox of a non-square frame.

A constant "segmentation model" made with the onnx helper API, in Ultralytics' layout
(``output0 [1, 4 + nc + 32, N]``, ``protos [1, 32, 80, 80]``): one detection whose box is wider
than the object, and one prototype that is +1 on a rectangle and -1 elsewhere, so the mask is
that rectangle, known in model-input pixels. A 640x360 frame letterboxed into 320x320 (scale
1/2, 70 rows of padding above and below) runs through DetectionPipeline, and the instance-label
image the node publishes must cover that rectangle mapped back by hand, to the pixel.
"""

from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline
from hobot_npu_infer.core.pipeline.pipeline_config import PipelineConfig
from hobot_npu_infer.ros.detection_msgs import masks_message
import numpy as np
import onnx
from onnx import helper, TensorProto
from std_msgs.msg import Header

INPUT = 320  # the model's square input
PROTO = 80  # prototype cells: 4 input pixels each
# The rectangle in input pixels (x0, y0, x1, y1), on the prototypes' 4-pixel grid: bilinear
# upsampling of a +1/-1 step between cells c - 1 and c crosses zero exactly at pixel 4c.
RECT = (80, 112, 240, 208)
BOX = (40.0, 80.0, 280.0, 240.0)  # the detection's box, around the rectangle
SOURCE = (640, 360)  # the frame: letterboxed at scale 1/2, content rows 70..249
PAD_Y = (INPUT - SOURCE[1] // 2) // 2


def constant(name, array):
    return helper.make_node('Constant', [], [name], value=helper.make_tensor(
        f'{name}_value', TensorProto.FLOAT, array.shape, array.ravel().tolist()))


def segmentation_model(path) -> str:
    x0, y0, x1, y1 = BOX
    coefficients = np.zeros(32, np.float32)
    coefficients[0] = 1.0
    prediction = np.concatenate([[(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], [0.9],
                                 coefficients]).astype(np.float32).reshape(1, 37, 1)
    protos = np.zeros((1, 32, PROTO, PROTO), np.float32)
    protos[0, 0] = -1.0
    protos[0, 0, RECT[1] // 4:RECT[3] // 4, RECT[0] // 4:RECT[2] // 4] = 1.0
    # Outputs that depend on the image (times 0), so no runtime folds the graph to nothing.
    nodes = [helper.make_node('ReduceMean', ['images'], ['mean'], keepdims=0),
             constant('zero', np.zeros(1, np.float32)),
             helper.make_node('Mul', ['mean', 'zero'], ['nothing']),
             constant('prediction', prediction), constant('prototypes', protos),
             helper.make_node('Add', ['prediction', 'nothing'], ['output0']),
             helper.make_node('Add', ['prototypes', 'nothing'], ['output1'])]
    graph = helper.make_graph(
        nodes, 'constant_segmenter',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, INPUT, INPUT])],
        [helper.make_tensor_value_info('output0', TensorProto.FLOAT, [1, 37, 1]),
         helper.make_tensor_value_info('output1', TensorProto.FLOAT, [1, 32, PROTO, PROTO])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8  # what every ONNX Runtime reads
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def test_the_mask_of_a_letterboxed_frame_is_the_rectangle_mapped_back(tmp_path):
    pipeline = DetectionPipeline.from_config(PipelineConfig(
        model=segmentation_model(tmp_path / 'segmenter.onnx'), decoder='yolov8_seg',
        class_names=['thing'], preprocess={'resize': 'letterbox'}))
    frame = np.full((SOURCE[1], SOURCE[0], 3), 128, np.uint8)
    [result], _ = pipeline.detect([frame])
    [det] = result.detections
    # Input pixel (x, y) is source pixel (2x, 2(y - 70)): the box and the rectangle mapped back.
    assert det.box == (2 * BOX[0], 2 * (BOX[1] - PAD_Y), 2 * BOX[2], 2 * (BOX[3] - PAD_Y))
    x0, y0, x1, y1 = 2 * RECT[0], 2 * (RECT[1] - PAD_Y), 2 * RECT[2], 2 * (RECT[3] - PAD_Y)
    assert (x0, y0, x1, y1) == (160, 84, 480, 276)

    msg = masks_message(Header(frame_id='camera'), result.detections, SOURCE)
    assert (msg.width, msg.height, msg.encoding) == (640, 360, 'mono8')
    labels = np.frombuffer(bytes(msg.data), np.uint8).reshape(360, 640)
    rows, cols = np.nonzero(labels == 1)
    edges = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    assert np.abs(np.subtract(edges, (x0, y0, x1, y1))).max() <= 1  # each edge within 1 px
    # In fact to the pixel, but for the corners: bilinear upsampling of the prototype leaves
    # each corner's one input pixel out (as Ultralytics' masks), 2x2 source pixels here.
    expected = np.zeros_like(labels)
    expected[y0:y1, x0:x1] = 1
    for x in (x0, x1 - 2):
        for y in (y0, y1 - 2):
            expected[y:y + 2, x:x + 2] = 0
    assert (labels == expected).all()
