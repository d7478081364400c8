"""
What matching Ultralytics means, shared by the parity tests of the core, the tools and the node.

Every Ultralytics detection must have exactly one of ours: greedy by box IoU within a class,
IoU >= 0.99, the score within 1e-3, and none left over on either side, except a detection
scoring within 1e-3 of the threshold, which one side may keep and the other not.
"""

import numpy as np
from ultralytics_fixtures import REAL_CONF

BOX_IOU = 0.99
SCORE_TOLERANCE = 1e-3
MASK_IOU = 0.95
PIXEL_TOLERANCE = 1.0
VISIBLE = 0.5  # keypoints compared in place: those Ultralytics gives a confidence above this
# The fall detector on bus.jpg at 0.25, as Ultralytics finds them: three people, Normal.
BUS_PEOPLE = ((217, 394, 349, 889), (34, 385, 218, 910), (687, 346, 810, 881))
ZIDANE_PEOPLE = ((699, 0, 1280, 718), (18, 171, 1151, 720))


def box_iou(a, b):
    """Return the IoU of every box of a (N, 4) with every box of b (M, 4), x1 y1 x2 y2."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def greedy_match(ref_boxes, ref_classes, our_boxes, our_classes):
    """
    Pair Ultralytics' detections with ours one to one, the best IoU first, within a class.

    Return the pairs (ref index, our index) and the indices left over on each side.
    """
    iou = box_iou(ref_boxes, our_boxes)
    iou[np.asarray(ref_classes)[:, None] != np.asarray(our_classes)[None, :]] = 0.0
    pairs, ref_used, our_used = [], set(), set()
    for flat in np.argsort(-iou, axis=None, kind='stable'):
        i, j = np.unravel_index(flat, iou.shape)
        if iou[i, j] <= 0:
            break
        if i not in ref_used and j not in our_used:
            pairs.append((int(i), int(j)))
            ref_used.add(i)
            our_used.add(j)
    return (pairs, [i for i in range(len(ref_boxes)) if i not in ref_used],
            [j for j in range(len(our_boxes)) if j not in our_used])


def load_reference(item):
    with np.load(item['npz']) as data:
        return {key: data[key] for key in data.files}


def people(ref, names):
    return [tuple(box) for box, c in zip(ref['boxes'], ref['class_ids'])
            if names[str(c)] == 'Normal']


def assert_found(expected, boxes):
    for box in expected:
        best = box_iou([box], boxes).max() if len(boxes) else 0.0
        assert best >= 0.95, f'no detection near {box}: {np.round(boxes).tolist()}'


def found_problems(ref, found, conf=REAL_CONF):
    """Compare detections in the JSON form (dicts) with Ultralytics' on one image."""
    pairs, ref_left, our_left = greedy_match(ref['boxes'], ref['class_ids'],
                                             [d['box'] for d in found],
                                             [d['class_id'] for d in found])
    edge = conf + SCORE_TOLERANCE
    problems = [f'Ultralytics {ref["boxes"][i].round().tolist()} {ref["scores"][i]:.3f} missed'
                for i in ref_left if ref['scores'][i] >= edge]
    problems += [f'extra {found[j]}' for j in our_left if found[j]['score'] >= edge]
    for i, j in pairs:
        iou = box_iou(ref['boxes'][i], found[j]['box'])[0, 0]
        if iou < BOX_IOU or abs(found[j]['score'] - ref['scores'][i]) > SCORE_TOLERANCE:
            problems.append(f'{found[j]} against Ultralytics {ref["boxes"][i].round().tolist()} '
                            f'{ref["scores"][i]:.4f} (IoU {iou:.4f})')
    return problems
