"""
The package against Ultralytics' own predict(), on the same ONNX files and the same images.

Ultralytics 8.4.190 is the reference of every YOLO layout the package decodes. For each model of
MODEL_SPECS (test/ultralytics_fixtures.py) the reference script exports the ONNX file and runs
Ultralytics on it; the package then runs the same file with nothing configured but the model's
path (and, for a random-weight model, the same low score threshold). Every Ultralytics
detection must have exactly one of ours: greedy by box IoU, IoU >= 0.99, the same class, the
score within 1e-3, and no detection left over on either side; masks IoU >= 0.95; keypoints
whose confidence is above 0.5 within 1 px, every keypoint confidence within 1e-3; rotated
boxes' corners within 1 px; classification's top 5 ids the same, best first, probabilities
within 1e-3. A detection scoring within 1e-3 of the threshold may be kept by one side only.
"""

import json
import subprocess
import sys

from conftest import REPO
import cv2
import numpy as np
from parity_checks import (
    assert_found,
    BOX_IOU,
    box_iou,
    BUS_PEOPLE,
    found_problems,
    greedy_match,
    load_reference,
    MASK_IOU,
    people,
    PIXEL_TOLERANCE,
    SCORE_TOLERANCE,
    VISIBLE,
    ZIDANE_PEOPLE,
)
import pytest
from ultralytics_fixtures import spec_by_name, SPEC_NAMES


def corners_of(detection):
    return np.asarray(detection.corners(), np.float64)


def envelope(corners):
    """Return the axis-aligned box (x1, y1, x2, y2) around each set of corners (N, 4, 2)."""
    corners = np.asarray(corners, np.float64).reshape(-1, 4, 2)
    return np.concatenate([corners.min(1), corners.max(1)], axis=1)


def our_boxes(detections, task):
    """Our boxes as Ultralytics gives them: a rotated box's axis-aligned envelope."""
    if task == 'obb':
        return envelope([corners_of(d) for d in detections])
    return np.array([d.box for d in detections], np.float64).reshape(-1, 4)


def mask_iou(reference, mask):
    """Return the IoU of Ultralytics' source-size mask and ours, pasted on a same-size canvas."""
    canvas = np.zeros(reference.shape, bool)
    mask.paste(canvas, True)
    union = np.logical_or(reference, canvas).sum()
    return 1.0 if union == 0 else np.logical_and(reference, canvas).sum() / union


def describe(box, score, class_id):
    return f'class {class_id} {score:.4f} at ({", ".join(f"{v:.1f}" for v in box)})'


def detection_problems(ref, names, detections, task, conf):
    """Return every way our detections of one image differ from Ultralytics' (``ref``)."""
    boxes = our_boxes(detections, task)
    classes = [d.class_id for d in detections]
    pairs, ref_left, our_left = greedy_match(ref['boxes'], ref['class_ids'], boxes, classes)
    edge = (conf or 0.0) + SCORE_TOLERANCE  # below this, either side may keep a detection
    problems = []
    for i in ref_left:
        if ref['scores'][i] >= edge:
            problems.append('Ultralytics has ' + describe(ref['boxes'][i], ref['scores'][i],
                                                          ref['class_ids'][i]) + ', we do not')
    for j in our_left:
        if detections[j].score >= edge:
            problems.append('we have ' + describe(boxes[j], detections[j].score, classes[j])
                            + ', Ultralytics does not')
    for i, j in pairs:
        ours, where = detections[j], describe(ref['boxes'][i], ref['scores'][i],
                                              ref['class_ids'][i])
        iou = box_iou(ref['boxes'][i], boxes[j])[0, 0]
        if iou < BOX_IOU:
            problems.append(f'{where}: ours at {describe(boxes[j], ours.score, ours.class_id)}, '
                            f'IoU {iou:.4f}')
        if abs(ours.score - ref['scores'][i]) > SCORE_TOLERANCE:
            problems.append(f'{where}: our score {ours.score:.5f}')
        expected_name = names.get(str(ours.class_id), str(ours.class_id))
        if ours.class_name != expected_name:
            problems.append(f'{where}: our class name {ours.class_name!r}, not {expected_name!r}')
        if 'masks' in ref:
            if ours.mask is None:
                problems.append(f'{where}: we have no mask')
            else:
                iou = mask_iou(ref['masks'][i], ours.mask)
                if iou < MASK_IOU:
                    problems.append(f'{where}: mask IoU {iou:.3f} (area {ref["masks"][i].sum()}'
                                    f' px, ours {ours.mask.area})')
        if 'keypoints' in ref:
            problems += keypoint_problems(where, ref, i, ours)
        if 'corners' in ref:
            distance = corner_distance(ref['corners'][i], corners_of(ours))
            if distance > PIXEL_TOLERANCE:
                problems.append(f'{where}: a rotated corner {distance:.2f} px off '
                                f'(ours: angle {ours.angle}, box {ours.box}; '
                                f'Ultralytics: xywhr {np.round(ref["xywhr"][i], 4).tolist()})')
    return problems


def keypoint_problems(where, ref, i, ours):
    expected = ref['keypoints'][i]
    if ours.keypoints is None or len(ours.keypoints) != len(expected):
        return [f'{where}: {0 if ours.keypoints is None else len(ours.keypoints)} keypoints, '
                f'not {len(expected)}']
    problems = []
    points = np.asarray(ours.keypoints, np.float64)
    visible = np.ones(len(expected), bool)
    if 'keypoint_scores' in ref:
        scores = ref['keypoint_scores'][i]
        visible = scores > VISIBLE
        if ours.keypoint_scores is None:
            problems.append(f'{where}: we have no keypoint confidences')
        else:
            error = np.abs(np.asarray(ours.keypoint_scores) - scores).max()
            if error > SCORE_TOLERANCE:
                problems.append(f'{where}: a keypoint confidence {error:.4f} off')
    distances = np.linalg.norm(points - expected, axis=1)[visible]
    if distances.size and distances.max() > PIXEL_TOLERANCE:
        problems.append(f'{where}: a keypoint {distances.max():.2f} px off')
    return problems


def corner_distance(reference, ours):
    """Return the largest distance from a corner to the nearest corner of the other box."""
    distances = np.linalg.norm(reference[:, None, :] - ours[None, :, :], axis=2)
    return max(distances.min(1).max(), distances.min(0).max())


def classification_problems(ref, names, detections, width, height):
    problems = []
    ids = [d.class_id for d in detections]
    if ids != ref['top5'].tolist():
        problems.append(f'top 5 {ids}, Ultralytics {ref["top5"].tolist()} '
                        f'({np.round(ref["top5_probs"], 4).tolist()})')
    for d, probability in zip(detections, ref['top5_probs']):
        if abs(d.score - probability) > SCORE_TOLERANCE:
            problems.append(f'class {d.class_id}: probability {d.score:.4f}, '
                            f'Ultralytics {probability:.4f}')
        if d.class_name != names.get(str(d.class_id), str(d.class_id)):
            problems.append(f'class {d.class_id}: name {d.class_name!r}')
        if np.abs(np.subtract(d.box, (0, 0, width, height))).max() > PIXEL_TOLERANCE:
            problems.append(f'class {d.class_id}: box {d.box}, not the whole image')
    return problems


def semantic_problems(ref, detections):
    """Each class's pixels (its detection's mask) against Ultralytics' class map."""
    reference = ref['class_map']
    ours = np.full(reference.shape, -1, np.int64)
    for d in detections:
        d.mask.paste(ours, d.class_id)
    problems = []
    for class_id in np.union1d(np.unique(reference), np.unique(ours[ours >= 0])):
        theirs, mine = reference == class_id, ours == class_id
        iou = (theirs & mine).sum() / max((theirs | mine).sum(), 1)
        if iou < MASK_IOU:
            problems.append(f'class {class_id}: pixels IoU {iou:.4f} ({mine.sum()} here, '
                            f'{theirs.sum()} in Ultralytics)')
    return problems


def run_package(spec, entry, images):
    """Run the package on the spec's ONNX file: nothing configured but the path (and conf)."""
    from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline, PipelineConfig
    config = PipelineConfig(model=entry['onnx'])
    if spec['configured']:
        config = PipelineConfig(model=entry['onnx'], score_threshold=spec['conf'])
    pipeline = DetectionPipeline.from_config(config)
    results, _ = pipeline.detect(images)
    return results


@pytest.mark.parametrize('name', SPEC_NAMES)
def test_the_package_finds_what_ultralytics_finds(name, ultralytics_reference):
    spec = spec_by_name(name)
    entry = ultralytics_reference['models'][name]
    names = entry['names']
    problems = []
    for batch in entry['batches']:
        images = [cv2.imread(item['path']) for item in batch]
        results = run_package(spec, entry, images)
        assert len(results) == len(images)
        for item, result in zip(batch, results):
            ref = load_reference(item)
            height, width = ref['shape']
            assert (result.width, result.height) == (width, height)
            if entry['task'] == 'classify':
                found = classification_problems(ref, names, result.detections, width, height)
                counts = f'{len(result.detections)} classes, Ultralytics 5'
            elif entry['task'] == 'semantic':
                found = semantic_problems(ref, result.detections)
                counts = f'{len(result.detections)} classes, Ultralytics ' \
                         f'{len(np.unique(ref["class_map"]))}'
            else:
                found = detection_problems(ref, names, result.detections, entry['task'],
                                           entry['conf'])
                counts = f'{len(result.detections)} detections, Ultralytics {len(ref["scores"])}'
            problems += [f'{item["image"]} ({counts}): {p}' for p in found]
    shown = '\n'.join(problems[:15]) + (f'\n... {len(problems) - 15} more'
                                        if len(problems) > 15 else '')
    assert not problems, f'{name} ({entry["task"]}, {entry["onnx"]}):\n{shown}'


@pytest.mark.parametrize('name', SPEC_NAMES)
def test_the_reference_has_something_to_compare(name, ultralytics_reference):
    """Each image gives Ultralytics detections (or a top 5) of the model's own layout."""
    spec, entry = spec_by_name(name), ultralytics_reference['models'][name]
    batch = 3 if name.endswith('-dynamic') else 1
    task = entry['task']
    if 'end2end' in name:  # final detections: 300 rows of box, score, class and the task's own
        extra = {'detect': 0, 'segment': 32, 'pose': 51, 'obb': 1}[task]
        assert entry['outputs'][0] == ['batch' if batch == 3 else 1, 300, 6 + extra]
    assert entry['inputs'][0][0] == ('batch' if batch == 3 else 1)
    assert [len(b) for b in entry['batches']] == [len(b) for b in spec['batches']]
    for batch_items in entry['batches']:
        for item in batch_items:
            ref = load_reference(item)
            if task == 'classify':
                assert len(ref['top5']) == 5 and ref['top5_probs'][0] > ref['top5_probs'][4]
                continue
            if task == 'semantic':
                assert len(np.unique(ref['class_map'])) >= 2, f'{item["image"]}: one class'
                continue
            assert len(ref['scores']) >= 2, f'{item["image"]}: too few to compare'
            assert (ref['scores'] >= (entry['conf'] or 0)).all()
            if task == 'pose':
                assert ref['keypoints'].shape[1:] == (17, 2)
            if task == 'segment':
                assert ref['masks'].shape == (len(ref['scores']), *ref['shape'])
                assert ref['masks'].any()
            if task == 'obb':
                assert ref['corners'].shape == (len(ref['scores']), 4, 2)


def test_the_fall_detector_reference_finds_the_people(ultralytics_reference):
    """The real model, as Ultralytics runs it: the people of bus.jpg and zidane.jpg."""
    entry = ultralytics_reference['models']['fall']
    assert entry['names'] == {'0': 'Normal', '1': 'Fall'}
    assert entry['outputs'] == [[1, 6, 8400]]
    bus, zidane = (load_reference(batch[0]) for batch in entry['batches'])
    assert_found(BUS_PEOPLE, people(bus, entry['names']))
    assert_found(ZIDANE_PEOPLE, people(zidane, entry['names']))


def test_detect_command_with_only_the_model_finds_the_same_people(
        fetched_models, ultralytics_reference):
    """`detect bus.jpg zidane.jpg --model best_fp16.onnx --json`: Ultralytics' detections."""
    proc = subprocess.run([sys.executable, '-m', 'hobot_npu_infer.tools.detect',
                           fetched_models['bus.jpg'], fetched_models['zidane.jpg'], '--model',
                           fetched_models['best_fp16.onnx'], '--json'],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    bus, zidane = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{')]
    assert (bus['width'], bus['height']) == (810, 1080)
    entry = ultralytics_reference['models']['fall']
    for found, batch, expected in ((bus, entry['batches'][0], BUS_PEOPLE),
                                   (zidane, entry['batches'][1], ZIDANE_PEOPLE)):
        assert_found(expected, [d['box'] for d in found['detections']
                                if d['class_name'] == 'Normal'])
        assert found_problems(load_reference(batch[0]), found['detections']) == []
