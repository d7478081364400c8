"""Drawing every task's detections: masks, rotated boxes, keypoints, the classes of an image."""

import math

from hobot_npu_infer.core.detection import Detection, InstanceMask
from hobot_npu_infer.core.imaging.annotate import draw_detections, instance_labels
import numpy as np

BLACK = np.zeros((120, 160, 3), np.uint8)


def square_mask(x, y, side):
    return InstanceMask(x, y, np.ones((side, side), bool))


def segment(box, class_id, mask):
    return Detection(box, 0.9, class_id, f'class{class_id}', mask=mask)


def test_a_mask_is_its_class_colour_at_half_opacity_inside_and_nothing_outside():
    cat = segment((10.0, 10.0, 40.0, 40.0), 1, square_mask(10, 10, 30))
    dog = segment((80.0, 60.0, 120.0, 100.0), 2, square_mask(80, 60, 40))
    out = draw_detections(BLACK, [cat, dog])
    cat_edge, cat_inside = out[25, 10].astype(int), out[25, 25].astype(int)  # left side, inside
    dog_edge, dog_inside = out[80, 80].astype(int), out[80, 100].astype(int)
    assert cat_edge.any() and tuple(cat_edge) != tuple(dog_edge)  # a colour per class
    assert np.abs(cat_inside - cat_edge / 2).max() <= 1
    assert np.abs(dog_inside - dog_edge / 2).max() <= 1
    assert not out[110:, :60].any()  # away from both: untouched
    assert not BLACK.any()  # drawn on a copy


def test_where_masks_overlap_the_earlier_detection_keeps_the_pixel():
    first = segment((0.0, 0.0, 50.0, 50.0), 1, square_mask(0, 0, 50))
    second = segment((30.0, 30.0, 90.0, 90.0), 2, square_mask(30, 30, 60))
    labels = instance_labels([first, second], (160, 120))
    assert labels.shape == (120, 160) and labels.dtype == np.uint8
    assert (labels[40, 40], labels[70, 70], labels[100, 100]) == (1, 2, 0)
    out = draw_detections(BLACK, [first, second])
    alone = draw_detections(BLACK, [first])
    assert (out[40, 40] == alone[40, 40]).all()


def test_labels_go_to_sixteen_bits_past_255_detections():
    dots = [segment((float(i), 0.0, i + 1.0, 1.0), 0, square_mask(i, 0, 1)) for i in range(300)]
    labels = instance_labels(dots, (300, 2))
    assert labels.dtype == np.uint16
    assert (labels[0] == np.arange(1, 301)).all() and not labels[1].any()


def test_an_oriented_box_is_drawn_rotated():
    # A 60x20 box about (80, 60) turned by 90 degrees: upright, 20 wide and 60 tall.
    det = Detection((50.0, 50.0, 110.0, 70.0), 0.9, 0, 'ship', angle=math.pi / 2)
    out = draw_detections(BLACK, [det])
    assert out[89, 80].any() and out[31, 80].any()  # the short sides, top and bottom
    assert out[60, 70].any() and out[60, 90].any()  # the long sides
    assert not out[60, 50].any() and not out[60, 110].any()  # not the unrotated box's ends


def test_keypoints_show_above_half_confidence_with_the_coco_skeleton():
    points = [(20.0 + 6 * i, 60.0) for i in range(17)]
    points[5], points[6], points[7] = (40.0, 30.0), (100.0, 30.0), (40.0, 100.0)
    scores = [0.9] * 17
    scores[7] = 0.3  # the left elbow: hidden, and so is the left upper arm (5-7)
    det = Detection((5.0, 5.0, 155.0, 115.0), 0.9, 0, 'person', tuple(points),
                    keypoint_scores=tuple(scores))
    out = draw_detections(BLACK, [det])
    assert out[30, 40].any() and out[30, 100].any()  # shoulders
    assert out[30, 70].any()  # the shoulder line (5-6) between them
    assert not out[100, 40].any()  # the low-confidence elbow
    assert not out[65, 40].any()  # nor the limb to it
    without_scores = draw_detections(BLACK, [Detection(det.box, 0.9, 0, 'person', det.keypoints)])
    assert without_scores[100, 40].any() and without_scores[65, 40].any()


def test_the_classes_of_the_whole_image_are_listed_not_boxed():
    top = [Detection((0.0, 0.0, 160.0, 120.0), s, c, n, None)
           for s, c, n in ((0.8, 3, 'tabby'), (0.1, 5, 'lynx'))]
    out = draw_detections(BLACK, top)
    assert not out[-2:].any() and not out[:, -2:].any()  # no box along the image's border
    rows = np.flatnonzero(out.any(axis=(1, 2)))
    assert rows.min() < 16 and 16 < rows.max() < 40  # two lines of text at the top left


def test_grey_images_are_drawn_in_colour():
    grey = np.full((120, 160), 100, np.uint8)
    out = draw_detections(grey, [segment((10.0, 10.0, 40.0, 40.0), 1, square_mask(10, 10, 30))])
    assert out.shape == (120, 160, 3)
    assert len(set(out[25, 25].tolist())) > 1


def test_masks_of_more_than_255_detections_are_drawn_too():
    square = segment((60.0, 60.0, 100.0, 100.0), 1, square_mask(60, 60, 40))
    dots = [segment((float(i % 160), float(i // 160), i % 160 + 1.0, i // 160 + 1.0), 2,
                    square_mask(i % 160, i // 160, 1)) for i in range(300)]
    out = draw_detections(BLACK, dots + [square])
    assert (out[80, 80] == draw_detections(BLACK, [square])[80, 80]).all()
    assert out[80, 80].any()
