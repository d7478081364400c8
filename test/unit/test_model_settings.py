"""A model's own description (metadata, output shapes) turned into the settings it runs with."""

from hobot_npu_infer.core.backends.selection import with_normalisation
from hobot_npu_infer.core.backends.tensors import TensorSpec
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.models.builtin_models import BUILTIN_MODELS
from hobot_npu_infer.core.models.model_file import ModelFile, parse_metadata, read_model_file
from hobot_npu_infer.core.pipeline.model_settings import choose_settings, host_preprocess
from hobot_npu_infer.core.pipeline.pipeline_config import PipelineConfig
from hobot_npu_infer.core.pipeline.preprocess import PreprocessConfig
import numpy as np
import onnx
from onnx import helper, TensorProto
import pytest

# What Ultralytics 8.4.190 writes into an export, as read from real exports.
FALL = {'task': 'detect', 'names': "{0: 'Normal', 1: 'Fall'}", 'imgsz': '[640, 640]',
        'stride': '32', 'batch': '1', 'end2end': 'False',
        'args': "{'batch': 1, 'nms': None, 'dynamic': False, 'simplify': True}"}


def metadata(**changes):
    return parse_metadata({**FALL, **changes})


def model_file(outputs, **changes) -> ModelFile:
    return ModelFile('my.onnx', metadata(**changes), outputs)


def test_metadata_of_an_ultralytics_export():
    meta = metadata()
    assert (meta.task, meta.names, meta.imgsz, meta.stride) == ('detect', ('Normal', 'Fall'),
                                                                (640, 640), 32)
    assert not meta.nms_inside and meta.kpt_shape is None and meta.problems == ()
    pose = metadata(task='pose', kpt_shape='[17, 3]', imgsz='[480, 640]')
    assert pose.kpt_shape == (17, 3) and pose.imgsz == (640, 480)  # imgsz is [h, w]
    assert metadata(end2end='True').nms_inside
    assert metadata(args="{'nms': True, 'dynamic': True}").nms_inside
    assert metadata(args="{'nms': True, 'dynamic': True}").dynamic


def test_unreadable_metadata_is_named_not_fatal():
    meta = metadata(names='{0: ', imgsz='big')
    assert meta.names == () and meta.imgsz is None
    assert any(p.startswith('names=') for p in meta.problems)
    assert any(p.startswith('imgsz=') for p in meta.problems)
    assert parse_metadata({'author': 'me'}) is None  # not an Ultralytics export


@pytest.mark.parametrize('task,extra,outputs,decoder', [
    ('detect', {}, [('output0', (1, 6, 8400))], 'yolov8'),
    ('detect', {'end2end': 'True'}, [('output0', (1, 300, 6))], 'yolo_end2end'),
    ('detect', {'args': "{'nms': True}"}, [('output0', (1, 300, 6))], 'yolo_end2end'),
    ('segment', {}, [('output0', (1, 38, 8400)), ('output1', (1, 32, 160, 160))],
     'yolov8_seg'),
    ('segment', {'end2end': 'True'}, [('output0', (1, 300, 38)),
                                      ('output1', (1, 32, 160, 160))], 'yolo_end2end_seg'),
    ('pose', {'kpt_shape': '[17, 3]'}, [('output0', (1, 57, 8400))], 'yolov8_pose'),
    ('pose', {'kpt_shape': '[17, 3]', 'end2end': 'True'}, [('output0', (1, 300, 57))],
     'yolo_end2end_pose'),
    ('obb', {}, [('output0', (1, 7, 8400))], 'yolov8_obb'),
    ('obb', {'end2end': 'True'}, [('output0', (1, 300, 7))], 'yolo_end2end_obb'),
    ('classify', {}, [('output0', (1, 2))], 'yolo_cls'),
    ('semantic', {}, [('output0', (1, 640, 640))], 'semantic'),
])
def test_metadata_chooses_the_decoder(task, extra, outputs, decoder):
    settings = choose_settings(PipelineConfig(model='my.onnx'), None,
                               model_file(outputs, task=task, **extra))
    assert settings.decoder == decoder
    assert settings.class_names == ['Normal', 'Fall']
    assert settings.decoder_options['num_classes'] == 2
    assert "from the file's metadata" in settings.note and decoder in settings.note


def test_an_ultralytics_export_runs_as_ultralytics_predicts():
    settings = choose_settings(PipelineConfig(model='my.onnx'), None,
                               model_file([('output0', (1, 6, 8400))]))
    p = settings.preprocess
    assert (p.resize, p.pad_value, p.channel_order, p.input_size) == ('letterbox', 114, 'rgb',
                                                                      (640, 640))
    assert p.scale == pytest.approx(1 / 255)
    assert settings.score_threshold == 0.25
    assert settings.decoder_options['nms_threshold'] == 0.7
    assert settings.decoder_options['max_detections'] == 300
    assert 'scale 1/255' in settings.note and 'given' not in settings.note


def test_what_is_given_wins_and_is_said():
    config = PipelineConfig(model='my.onnx', decoder='yolov8', score_threshold=0.6,
                            class_names=['a', 'b'], preprocess={'scale': 1.0, 'pad_value': 0},
                            input_size=(320, 320),
                            decoder_options={'nms_threshold': 0.5})
    settings = choose_settings(config, None, model_file([('output0', (1, 6, 8400))]))
    assert settings.score_threshold == 0.6 and settings.class_names == ['a', 'b']
    assert settings.preprocess.scale == 1.0 and settings.preprocess.pad_value == 0
    assert settings.preprocess.input_size == (320, 320)
    assert settings.decoder_options['nms_threshold'] == 0.5
    assert settings.preprocess.size_multiple == 32  # the export's stride
    for given in ('decoder', 'score threshold', 'class names', 'preprocess scale',
                  'input size', 'decoder options'):
        assert given in settings.note.split('given: ')[1]


def test_a_builtin_model_keeps_its_own_settings():
    profile = BUILTIN_MODELS['centerface']
    settings = choose_settings(PipelineConfig(), profile, ModelFile('centerface.onnx'))
    assert settings.decoder == 'centerface' and settings.score_threshold == 0.5
    assert settings.preprocess.resize == 'stretch' and settings.preprocess.scale == 1.0
    assert settings.class_names == ['face']


@pytest.mark.parametrize('outputs,decoder', [
    ([('out', (1, 84, 8400))], 'yolov8'),
    ([('out', (None, 84, None))], 'yolov8'),
    ([('out', (1, 25200, 85))], 'yolov5'),
    ([('out', (1, 300, 6))], 'yolo_end2end'),
    ([('out', (1, 116, 8400)), ('protos', (1, 32, 160, 160))], 'yolov8_seg'),
    ([('out', (1, 1000))], 'yolo_cls'),
    ([('a', (1, 1, 8, 8)), ('b', (1, 2, 8, 8)), ('c', (1, 2, 8, 8)), ('d', (1, 10, 8, 8))],
     'centerface'),
    ([(f'{k}{s}', (1, c, 640 // s, 640 // s)) for s in (8, 16, 32)
      for k, c in (('box', 64), ('cls', 2), ('sum', 1))], 'rknn_yolov8'),
    ([(f'{k}{s}', (1, 640 // s, 640 // s, c)) for s in (8, 16, 32)
      for k, c in (('cls', 80), ('box', 64))], 'rdk_yolov8'),
])
def test_without_metadata_the_shapes_choose(outputs, decoder):
    settings = choose_settings(PipelineConfig(model='x.onnx'), None, ModelFile('x.onnx', None,
                                                                               outputs))
    assert settings.decoder == decoder
    assert 'guessed from the output shapes' in settings.note


def test_unknown_outputs_name_the_shapes_and_the_layouts_tried():
    with pytest.raises(ConfigError) as error:
        choose_settings(PipelineConfig(model='x.onnx'), None,
                        ModelFile('x.onnx', None, [('a', (1, 3)), ('b', (1, 3, 5, 7, 9))]))
    message = str(error.value)
    assert '[1,3], [1,3,5,7,9]' in message and 'yolov8 [B,4+C,N]' in message
    assert 'name the decoder' in message and '\n' not in message


def test_metadata_contradicting_the_outputs_is_reported():
    with pytest.raises(ConfigError) as error:
        choose_settings(PipelineConfig(model='my.onnx'), None,
                        model_file([('output0', (1, 84, 8400))]))
    message = str(error.value)
    assert 'contradicts' in message and '2 classes' in message and '[1,84,8400]' in message
    with pytest.raises(ConfigError, match='one prediction output and one of mask prototypes'):
        choose_settings(PipelineConfig(model='my.onnx'), None,
                        model_file([('output0', (1, 38, 8400))], task='segment'))
    # an explicit decoder is the user's word: the metadata is not checked against it
    assert choose_settings(PipelineConfig(model='my.onnx', decoder='yolov8'), None,
                           model_file([('output0', (1, 84, 8400))])).decoder == 'yolov8'


def test_unread_outputs_wait_for_the_loaded_model():
    assert choose_settings(PipelineConfig(model='m.bin'), None, ModelFile('m.bin')) is None


def test_read_model_file_reads_metadata_and_output_shapes(tmp_path):
    graph = helper.make_graph(
        [helper.make_node('Identity', ['images'], ['output0'])], 'g',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, ['batch', 6, 'anchors'])],
        [helper.make_tensor_value_info('output0', TensorProto.FLOAT, ['batch', 6, 'anchors'])])
    model = helper.make_model(graph)
    for key, value in FALL.items():
        model.metadata_props.add(key=key, value=value)
    path = str(tmp_path / 'tiny.onnx')
    onnx.save(model, path)
    read = read_model_file(path)
    assert read.metadata.names == ('Normal', 'Fall')
    assert read.outputs == [('output0', (None, 6, None))]
    assert read.describe_outputs() == 'output0 [?,6,?]'
    assert read_model_file(str(tmp_path / 'model.bin')).metadata is None


def test_integer_inputs_normalise_inside_the_model():
    yolo = PreprocessConfig(scale=1 / 255)
    float_input = TensorSpec('images', (1, 3, 640, 640), np.dtype(np.float32), 'NCHW')
    uint8_input = TensorSpec('images', (1, 640, 640, 3), np.dtype(np.uint8), 'NHWC')
    assert host_preprocess(yolo, float_input) == (yolo, '')
    kept, note = host_preprocess(yolo, uint8_input)
    assert kept.scale == 1.0 and 'uint8' in note
    # rknn builds the same normalisation into the model it compiles
    options = with_normalisation({}, yolo)
    assert options['rknn.std'] == pytest.approx([255.0] * 3)
    assert options['rknn.mean'] == [0.0] * 3 and options['rknn.channel_order'] == 'rgb'
    assert with_normalisation({'rknn.std': [1, 1, 1]}, yolo)['rknn.std'] == [1, 1, 1]
