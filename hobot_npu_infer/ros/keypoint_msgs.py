"""
Keypoints as vision_msgs/Detection2DArray: one Detection2D per keypoint, standard types only.

vision_msgs has no keypoint type; this is the first option of vision_msgs issue #28. Each
keypoint is a Detection2D with a 0x0 ``bbox`` centred on it, ``results[0].hypothesis.class_id``
its name, ``score`` its confidence (the parent detection's score when the model gives none per
keypoint), and ``id`` its parent detection's ``id`` (the track ID, or ''). A parent's K
keypoints come together, parent after parent in the order of the detections message of the same
stamp, so keypoint ``i`` belongs to detection ``i // K``. Each keypoint's ``header`` is its
parent's (the prediction marking of :mod:`detection_msgs` carries over).
"""

from typing import Sequence

from hobot_npu_infer.core.detection import Detection

# COCO-17 body keypoints, the order of Ultralytics' pose models.
COCO_KEYPOINTS = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
    'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
# CenterFace's 5 landmarks in its output order. Unlike COCO's (the person's own left), left here
# is the image's left: left_eye is the eye with the smaller x on a face seen from the front.
FACE_LANDMARKS = ('left_eye', 'right_eye', 'nose', 'left_mouth', 'right_mouth')


def keypoint_names(task: str, count: int) -> Sequence[str]:
    """
    Return the names of a stream's ``count`` keypoints.

    COCO-17 for 17; CenterFace's landmarks for 5 on a detect stream (face detection); else
    ``kpt_<i>``.
    """
    if count == len(COCO_KEYPOINTS):
        return COCO_KEYPOINTS
    if task == 'detect' and count == len(FACE_LANDMARKS):
        return FACE_LANDMARKS
    return tuple(f'kpt_{i}' for i in range(count))


def to_keypoints_message(header, detections: Sequence[Detection], parents, task: str, module):
    """
    Return the keypoints of ``detections`` as a Detection2DArray with ``header``.

    ``parents`` is the Detection2DArray of the same detections (:func:`detection_msgs.
    to_vision_msgs`): each keypoint takes its parent's ``header`` and ``id``. K is the largest
    number of keypoints among the detections; one with fewer (or none) is given K placeholders
    at its box centre with score 0, so that keypoint ``i`` still belongs to detection
    ``i // K``.
    """
    array = module.Detection2DArray()
    array.header = header
    count = max((len(det.keypoints or ()) for det in detections), default=0)
    if not count:
        return array
    names = keypoint_names(task, count)
    for det, parent in zip(detections, parents.detections):
        points = list(det.keypoints or ())
        scores = list(det.keypoint_scores) if det.keypoint_scores is not None \
            else [det.score] * len(points)
        x1, y1, x2, y2 = det.box
        missing = count - len(points)
        points += [((x1 + x2) / 2, (y1 + y2) / 2)] * missing
        scores += [0.0] * missing
        for name, (x, y), score in zip(names, points, scores):
            msg = module.Detection2D()
            msg.header = parent.header
            msg.id = parent.id
            hypothesis = module.ObjectHypothesisWithPose()
            hypothesis.hypothesis.class_id = name
            hypothesis.hypothesis.score = float(score)
            msg.results.append(hypothesis)
            _set_point(msg.bbox, float(x), float(y))
            array.detections.append(msg)
    return array


def _set_point(bbox, x: float, y: float) -> None:
    center = bbox.center
    if hasattr(center, 'position'):  # vision_msgs >= 4 (Humble, Jazzy)
        center.position.x, center.position.y = x, y
    else:  # vision_msgs 3 used geometry_msgs/Pose2D
        center.x, center.y = x, y
    center.theta = 0.0
    bbox.size_x = bbox.size_y = 0.0
