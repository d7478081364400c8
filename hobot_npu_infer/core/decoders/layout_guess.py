"""
Which decoder a model's outputs call for, from their shapes alone or checked against metadata.

Used when a file has no metadata and no decoder is named; an export's metadata is checked
against the outputs here too, so a file that contradicts itself is reported, not followed.
"""

from typing import Dict, List, Optional, Sequence, Tuple

from hobot_npu_infer.core.errors import ConfigError

Shape = Tuple[Optional[int], ...]
Outputs = Sequence[Tuple[str, Shape]]

# task -> (decoder when NMS runs here, decoder when the export has NMS or a one-to-one head)
TASK_DECODERS = {
    'detect': ('yolov8', 'yolo_end2end'),
    'segment': ('yolov8_seg', 'yolo_end2end_seg'),
    'pose': ('yolov8_pose', 'yolo_end2end_pose'),
    'obb': ('yolov8_obb', 'yolo_end2end_obb'),
    'classify': ('yolo_cls', 'yolo_cls'),
    'semantic': ('semantic', 'semantic'),
}
END2END_MAX_DETECTIONS = 1000  # a [B, N, 6] output with more rows is YOLOv5's, not final boxes

TRIED = ('yolov8 [B,4+C,N]; yolov5 [B,N,5+C]; yolo_end2end [B,<=1000,6]; yolov8_seg '
         '[B,4+C+M,N] with protos [B,M,h,w]; yolo_end2end_seg [B,N,6+M] with protos; yolo_cls '
         '[B,C]; centerface (4 maps of 1, 2, 2, 10 channels); rknn_yolov8 and rdk_yolov8 (6 or '
         '9 per-stride maps, DFL boxes of 64 channels)')


def _fmt(shape: Shape) -> str:
    return '[' + ','.join('?' if d is None else str(d) for d in shape) + ']'


def _split(outputs: Outputs) -> Tuple[List[Shape], List[Shape]]:
    """Return the rank-3 prediction outputs and the rank-4 map outputs (protos, heatmaps)."""
    return ([s for _, s in outputs if len(s) == 3], [s for _, s in outputs if len(s) == 4])


def guess_decoder(outputs: Outputs) -> Tuple[str, Dict[str, object], str]:
    """
    Return a decoder name, its options and the reason, from the output shapes only.

    Raises ConfigError naming the shapes seen and the layouts tried when none fits.
    """
    shapes = [s for _, s in outputs]
    preds, maps = _split(outputs)
    if len(shapes) == 1 and len(shapes[0]) == 2:
        return 'yolo_cls', {}, f'{_fmt(shapes[0])}: class scores'
    if len(shapes) == 4 and len(maps) == 4 and sorted(s[1] or 0 for s in maps) == [1, 2, 2, 10]:
        return 'centerface', {}, 'heatmap, scale, offset and landmark maps'
    if len(shapes) in (6, 9) and len(maps) == len(shapes):  # vendor zoo: per stride maps
        if any(s[1] == 64 for s in maps):
            return 'rknn_yolov8', {}, f'{len(maps)} per-stride maps, DFL boxes of 64 channels'
        if any(s[3] == 64 for s in maps):
            return 'rdk_yolov8', {}, f'{len(maps)} per-stride NHWC maps, DFL boxes of 64'
    if len(preds) == 1 and len(shapes) in (1, 2) and len(maps) == len(shapes) - 1:
        _, a, b = preds[0]
        seg = '_seg' if maps else ''
        if a is not None and (b is None or a < b):
            return f'yolov8{seg}', {}, f'{_fmt(preds[0])}: {a} channels per anchor'
        if b is not None and b >= 6 and a is not None and a <= END2END_MAX_DETECTIONS:
            return f'yolo_end2end{seg}', {}, f'{_fmt(preds[0])}: {a} final detections'
        if b is not None and b >= 6 and not seg:
            return 'yolov5', {}, f'{_fmt(preds[0])}: {b} values per anchor (objectness)'
    raise ConfigError(f'cannot tell how to decode outputs {", ".join(_fmt(s) for s in shapes)} '
                      f'(no metadata, no decoder named); layouts tried: {TRIED}; name the '
                      f'decoder (decoder parameter or --decoder)')


def expected_channels(task: str, nms_inside: bool, num_classes: int, mask_channels: int,
                      keypoint_values: int) -> int:
    """Return the prediction length an Ultralytics export of ``task`` has for its classes."""
    extra = {'segment': mask_channels, 'pose': keypoint_values, 'obb': 1}.get(task, 0)
    if nms_inside:
        return 6 + extra  # x1 y1 x2 y2 (obb: cx cy w h) score class, then the extra values
    return 4 + num_classes + extra


def contradiction(task: str, nms_inside: bool, num_classes: int,
                  kpt_shape: Optional[Tuple[int, int]], outputs: Outputs) -> Optional[str]:
    """Say how the outputs contradict metadata claiming ``task`` with ``num_classes``; or None."""
    shapes = [s for _, s in outputs]
    preds, maps = _split(outputs)
    seen = ', '.join(_fmt(s) for s in shapes)
    if task == 'classify':
        ok = len(shapes) == 1 and len(shapes[0]) == 2 and shapes[0][1] in (None, num_classes)
        return None if ok else f'a classifier of {num_classes} classes gives [B,{num_classes}]'
    if task == 'semantic':
        ok = len(shapes) == 1 and (len(shapes[0]) == 3 or (
            len(shapes[0]) == 4 and shapes[0][1] in (None, num_classes)))
        return None if ok else f'semantic segmentation gives [B,H,W] or [B,{num_classes},H,W]'
    if len(preds) != 1 or len(maps) != (1 if task == 'segment' else 0):
        return f'a {task} export has one prediction output' + \
            (' and one of mask prototypes' if task == 'segment' else '') + f', not {seen}'
    mask_channels = maps[0][1] or 0 if maps else 0
    keypoint_values = kpt_shape[0] * kpt_shape[1] if kpt_shape else 0
    want = expected_channels(task, nms_inside, num_classes, mask_channels, keypoint_values)
    axis = preds[0][2] if nms_inside else preds[0][1]
    if axis is not None and axis != want:
        return (f'{task} with {num_classes} classes' + (', NMS inside' if nms_inside else '') +
                f' makes {want} values per prediction, but output {_fmt(preds[0])} has {axis}')
    return None
