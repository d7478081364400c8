"""
Multi-object tracking against ground truth, on a sequence rendered from real photos.

Usage: ``python -m hobot_npu_infer.bench.tracking_bench``.

People are cut out of two real photos (Ultralytics' bus.jpg and zidane.jpg: the real detector,
best_fp16.onnx, finds them; GrabCut inside each box gives the silhouette) and pasted on a real
background photo (scikit-image's rocket), moving on known paths: a crossing where one passes in
front of another, a walker on a curved path who goes fully behind a foreground pillar for a few
frames, two people close to the camera, one leaving the frame accelerating and one entering it
slowing down. The ground truth of each frame is every pasted sprite's box, clipped to the frame;
an object less than 30 % visible (its silhouette's pixels in the frame and not covered by a
sprite in front or by the pillar) is left out of it.

The real detector runs once on every frame (at the tracker's low threshold, as a tracking node
decodes). Then ByteTrack (ObjectTracker) is run on those cached detections with the detector at
1/1, 1/2 and 1/3 of the camera's rate, with shadow tracking (the tracker's predicted boxes on the
frames the detector skips) on and off, and each run is scored on every camera frame with
motmetrics (CLEAR MOT and IDF1, IoU at least 0.5 to match), beside the cost of the tracker.
The detector alone, without identities, is the baseline. The detector's classes (Normal, Fall)
are two states of one person: ``--agnostic`` runs it as a node would be set up for such a model,
NMS across the classes at IoU 0.5 (``decoder_options: [agnostic_nms=true, nms_threshold=0.5]``)
and one tracker for every class (``track_per_class: false``); without it, the node's defaults
(NMS and tracking per class, NMS at Ultralytics' IoU 0.7).
"""

from dataclasses import dataclass, replace
import json
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.telemetry.rolling_stats import summarize
from hobot_npu_infer.core.tracking.tracker_config import TrackerConfig
from hobot_npu_infer.tools.cli import command_parser, console_script, write_json
import numpy as np

MODELS_VARIABLE = 'HOBOT_NPU_INFER_MODELS'
AGNOSTIC_NMS_IOU = 0.5  # one box per person: a torso box inside a body box overlaps it less
DETECTOR = 'best_fp16.onnx'  # a real YOLOv8s (classes Normal and Fall: it finds people)
PHOTOS = ('bus.jpg', 'zidane.jpg')
FPS = 30.0
WIDTH, HEIGHT = 1280, 720
SCORE_THRESHOLD = 0.25  # the detector's own: what is published untracked
SPRITE_SCORE = 0.5  # people cut out of the photos: detections at least this sure
SPRITE_MAX_HEIGHT = 480  # photos are cut at this height at most (sprites are pasted smaller)
EDGE = 2  # pixels GrabCut's rectangle keeps off a crop's edge
MARGIN = 12  # photo pixels around a box cut with it: GrabCut's background samples
CORE = (0.15, 0.3)  # half-axes of the ellipse at a box's centre taken as the person, of its size
GRABCUT_ROUNDS = 5
MIN_VISIBLE = 0.3  # objects less visible than this are not in the ground truth
MAX_DISTANCE = 0.5  # 1 - IoU: a box matches an object at IoU 0.5 or more
RATES = (1, 2, 3)  # the detector on every k-th camera frame
PILLAR = (990, 1090)  # x range of the foreground pillar, full height
NOISE_SIGMA = 2.0  # camera noise, in grey levels
BOB_PX, STEP_HZ = 2.5, 2.0  # walkers bob up and down with their steps
SAVE_AT = (0.0, 0.3, 0.34, 0.45, 0.5, 0.55, 0.8, 1.0)  # --save-frames: these parts of the run
SAVED_CONFIG = '1/3 shadow'  # --save-frames draws this configuration's boxes


@dataclass
class Sprite:
    """A person cut out of a photo: the pixels of the silhouette's box, and the silhouette."""

    name: str  # photo stem '#' rank among its people by score: 'bus#1'
    image: np.ndarray  # BGR, the silhouette's bounding box
    mask: np.ndarray  # bool, the silhouette
    torso: bool  # cut by the photo's bottom edge: pasted with that edge on the frame's bottom
    box: Tuple[int, int, int, int]  # the detector's box in the photo, trimmed
    silhouette_box: Tuple[int, int, int, int]  # the silhouette's box in the photo
    score: float


@dataclass(frozen=True)
class Walker:
    """
    One object's path over the run, from ``start`` to ``end`` (anchor: its box's bottom centre).

    Positions are in 1280x720 frame pixels at the run's progress s from 0 to 1, so every event
    happens whatever the number of frames. ``arc`` bends the path: the vertical offset at its
    middle (negative: up). ``accel`` 1 starts at rest and speeds up, -1 slows down to rest.
    """

    sprite: str
    height: float
    start: Tuple[float, float]
    end: Tuple[float, float]
    arc: float = 0.0
    accel: float = 0.0
    mirrored: bool = False

    def anchor(self, s: float) -> Tuple[float, float]:
        p = s + self.accel * s * (s - 1)
        x = self.start[0] + (self.end[0] - self.start[0]) * p
        y = self.start[1] + (self.end[1] - self.start[1]) * p + self.arc * 4 * p * (1 - p)
        return x, y


# The scene: --objects N takes the first N (more are random walkers from --seed).
SCRIPT = (
    Walker('bus#2', 290, (300, 620), (900, 620)),  # left to right, behind the next one
    Walker('bus#1', 350, (900, 705), (300, 705)),  # right to left: they cross mid-run
    Walker('bus#2', 190, (1270, 470), (560, 470), arc=-60, mirrored=True),  # behind the pillar
    Walker('zidane#2', 270, (180, HEIGHT), (-250, HEIGHT), accel=1.0),  # leaves, speeding up
    Walker('zidane#1', 300, (1480, HEIGHT), (1170, HEIGHT), accel=-1.0),  # enters, slowing
)


@dataclass
class Truth:
    """One object in one frame: its pasted box clipped to the frame, and how much is seen."""

    object_id: int
    box: Tuple[float, float, float, float]
    visible: float  # share of its silhouette's pixels in the frame and not covered


def models_dir() -> str:
    folder = os.environ.get(MODELS_VARIABLE) or '.models'
    missing = [n for n in (DETECTOR, *PHOTOS) if not os.path.isfile(os.path.join(folder, n))]
    if missing:
        raise ConfigError(f'{", ".join(missing)} not in {folder}: run `make models` or set '
                          f'{MODELS_VARIABLE} to the folder that holds them')
    return folder


def detector(folder: str, score_threshold: float, agnostic: bool = False):
    from hobot_npu_infer.core.pipeline.detection_pipeline import DetectionPipeline
    from hobot_npu_infer.core.pipeline.pipeline_config import PipelineConfig
    return DetectionPipeline.from_config(PipelineConfig(
        model=os.path.join(folder, DETECTOR), score_threshold=score_threshold,
        decoder_options={'agnostic_nms': True, 'nms_threshold': AGNOSTIC_NMS_IOU} if agnostic
        else {}))


def trimmed_boxes(people: Sequence[Detection]) -> List[Optional[Tuple[int, int, int, int]]]:
    """
    Return each person's box, cut where it overlaps a surer person's box (None: too little left).

    ``people`` are in descending score order; a box is cut at the near side of every surer box
    it overlaps, horizontally (people stand side by side), and kept if half its width is left.
    """
    boxes: List[Optional[Tuple[int, int, int, int]]] = []
    for det in people:
        x1, y1, x2, y2 = (int(round(v)) for v in det.box)
        width = x2 - x1
        for other in boxes:
            if other is None or other[0] >= x2 or other[2] <= x1 or other[1] >= y2 \
                    or other[3] <= y1:
                continue
            if (other[0] + other[2]) > (x1 + x2):  # the surer one is to the right
                x2 = min(x2, other[0])
            else:
                x1 = max(x1, other[2])
        boxes.append((x1, y1, x2, y2) if x2 - x1 >= width / 2 else None)
    return boxes


def cut_sprite(photo: np.ndarray, box: Tuple[int, int, int, int], name: str,
               score: float) -> Optional[Sprite]:
    """
    Cut the person in ``box`` out of ``photo`` with GrabCut (seeded), or None.

    None when the silhouette touches the photo's left or right side (a person cut by the
    photo's side would be pasted cut) or is less than half the box's height (GrabCut took a
    part of the scene). One that reaches the photo's bottom is a torso.
    """
    x1, y1, x2, y2 = box
    photo_h, photo_w = photo.shape[:2]
    cx1, cy1 = max(0, x1 - MARGIN), max(0, y1 - MARGIN)
    cx2, cy2 = min(photo_w, x2 + MARGIN), min(photo_h, y2 + MARGIN)
    scale = min(1.0, SPRITE_MAX_HEIGHT / (cy2 - cy1))
    crop = cv2.resize(photo[cy1:cy2, cx1:cx2], None, fx=scale, fy=scale,
                      interpolation=cv2.INTER_AREA)
    # GrabCut's rectangle: the box, kept off the crop's top and sides (where the box reaches
    # the photo's edge), so that the background model has some pixels on every side
    rx1, ry1 = max(EDGE, round((x1 - cx1) * scale)), max(EDGE, round((y1 - cy1) * scale))
    rx2 = min(crop.shape[1] - EDGE, round((x2 - cx1) * scale))
    ry2 = min(crop.shape[0], round((y2 - cy1) * scale))
    labels = np.full(crop.shape[:2], cv2.GC_BGD, np.uint8)
    labels[ry1:ry2, rx1:rx2] = cv2.GC_PR_FGD
    centre = ((rx1 + rx2) // 2, (ry1 + ry2) // 2)  # the core of the box is the person's body
    cv2.ellipse(labels, centre, (max(1, round(CORE[0] * (rx2 - rx1))),
                                 max(1, round(CORE[1] * (ry2 - ry1)))), 0, 0, 360,
                cv2.GC_FGD, -1)
    cv2.setRNGSeed(0)
    cv2.grabCut(crop, labels, None, np.zeros((1, 65)), np.zeros((1, 65)), GRABCUT_ROUNDS,
                cv2.GC_INIT_WITH_MASK)
    mask = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, parts, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = cv2.morphologyEx((parts == largest).astype(np.uint8), cv2.MORPH_CLOSE,
                            np.ones((5, 5), np.uint8)).astype(bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    sy1, sy2, sx1, sx2 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if (cx1 == 0 and sx1 <= EDGE) or (cx2 == photo_w and sx2 >= crop.shape[1] - EDGE):
        return None
    if sy2 - sy1 < 0.5 * (ry2 - ry1):  # GrabCut took a part of the scene, not the person
        return None
    torso = bool(cy2 == photo_h and sy2 >= crop.shape[0] - EDGE)
    in_photo = (cx1 + sx1 / scale, cy1 + sy1 / scale, cx1 + sx2 / scale, cy1 + sy2 / scale)
    return Sprite(name, crop[sy1:sy2, sx1:sx2].copy(), mask[sy1:sy2, sx1:sx2].copy(), torso,
                  box, tuple(int(round(v)) for v in in_photo), score)


def cut_sprites(pipeline, folder: str) -> Dict[str, Sprite]:
    """Return the people of the photos, found by the detector, by name ('bus#1': the surest)."""
    sprites: Dict[str, Sprite] = {}
    for photo_name in PHOTOS:
        photo = cv2.imread(os.path.join(folder, photo_name))
        if photo is None:
            raise ConfigError(f'cannot read {os.path.join(folder, photo_name)}')
        results, _ = pipeline.detect([photo])
        people = sorted((d for d in results[0].detections if d.score >= SPRITE_SCORE),
                        key=lambda d: -d.score)
        stem = os.path.splitext(photo_name)[0]
        for rank, (det, box) in enumerate(zip(people, trimmed_boxes(people)), 1):
            sprite = None if box is None else cut_sprite(photo, box, f'{stem}#{rank}',
                                                         det.score)
            if sprite is not None:
                sprites[sprite.name] = sprite
    return sprites


def background() -> np.ndarray:
    """Return a real photo without people: scikit-image's rocket at dusk, at the frame's size."""
    from hobot_npu_infer.core.imaging.sample_images import load_sample
    photo = load_sample('rocket')  # 640x427
    top = (photo.shape[0] - photo.shape[1] * HEIGHT // WIDTH) // 2
    photo = photo[top:top + photo.shape[1] * HEIGHT // WIDTH]
    return cv2.resize(photo, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)


def pillar() -> np.ndarray:
    """Return the foreground pillar: scikit-image's brick texture, tinted, shaded as a column."""
    import skimage.data
    brick = skimage.data.brick()  # 512x512 grey
    width = PILLAR[1] - PILLAR[0]
    grey = np.tile(brick[:, :width], (HEIGHT // brick.shape[0] + 1, 1))[:HEIGHT]
    shade = 0.45 + 0.55 * np.sin(np.linspace(0.15, np.pi - 0.15, width))  # round: dark edges
    tint = np.array([0.55, 0.68, 0.9], np.float32)  # BGR: warm sandstone
    return np.clip(grey[:, :, None] * shade[None, :, None] * tint, 0, 255).astype(np.uint8)


def random_walkers(count: int, sprites: Dict[str, Sprite], rng) -> List[Walker]:
    """Return walkers beyond the script: full-body sprites on random straight or bent paths."""
    names = sorted(name for name, sprite in sprites.items() if not sprite.torso)
    walkers = []
    for _ in range(count):
        height = float(rng.uniform(170, 330))
        feet = 420 + (height - 170) * 1.6  # the taller, the nearer: lower in the frame
        x0, x1 = (float(v) for v in rng.uniform(-50, WIDTH + 50, 2))
        walkers.append(Walker(names[int(rng.integers(len(names)))], height, (x0, feet),
                              (x1, feet), arc=float(rng.uniform(-50, 50)),
                              accel=float(rng.uniform(-0.5, 0.5)),
                              mirrored=bool(rng.integers(2))))
    return walkers


class Scene:
    """The rendered sequence: frame ``i`` and its ground truth, the same for the same seed."""

    def __init__(self, sprites: Dict[str, Sprite], frames: int, objects: int, seed: int):
        self.frames = frames
        rng = np.random.default_rng(seed)
        walkers = list(SCRIPT[:objects]) + random_walkers(max(0, objects - len(SCRIPT)),
                                                          sprites, rng)
        missing = sorted({w.sprite for w in walkers} - set(sprites))
        if missing:
            raise ConfigError(f'the detector found no {", ".join(missing)} in the photos')
        self.walkers = walkers
        self.phases = rng.uniform(0, 2 * np.pi, len(walkers))
        self.noise_seed = int(rng.integers(2 ** 31))
        self.background = background().astype(np.float32)
        self.pillar = pillar()
        self.pasted = [self._scaled(sprites[w.sprite], w) for w in walkers]
        self.torso = [sprites[w.sprite].torso for w in walkers]

    @staticmethod
    def _scaled(sprite: Sprite, walker: Walker) -> Tuple[np.ndarray, np.ndarray]:
        """Return the sprite at the walker's height: BGR float32 and alpha (soft at its edges)."""
        h = max(2, round(walker.height))
        w = max(2, round(sprite.image.shape[1] * h / sprite.image.shape[0]))
        image = cv2.resize(sprite.image, (w, h), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(sprite.mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        if walker.mirrored:
            image, alpha = image[:, ::-1], alpha[:, ::-1]
        return image.astype(np.float32), np.ascontiguousarray(alpha)

    def placements(self, i: int) -> List[Tuple[int, int, int]]:
        """(object index, x1, y1) of each sprite in frame ``i``, back to front."""
        s = i / max(self.frames - 1, 1)
        t = i / FPS
        placed = []
        for k, walker in enumerate(self.walkers):
            x, y = walker.anchor(s)
            if not self.torso[k]:
                y += BOB_PX * np.sin(2 * np.pi * STEP_HZ * t + self.phases[k])
            h, w = self.pasted[k][1].shape
            placed.append((y, k, int(round(x - w / 2)), int(round(y - h))))
        placed.sort()  # lower in the frame is nearer the camera: drawn later
        return [(k, x1, y1) for _, k, x1, y1 in placed]

    def render(self, i: int) -> Tuple[np.ndarray, List[Truth]]:
        """Return frame ``i`` (BGR) and its ground truth: objects at least 30 % visible."""
        canvas = self.background.copy()
        owner = np.full((HEIGHT, WIDTH), -1, np.int16)  # which object each pixel shows
        boxes, areas = {}, {}
        for k, x1, y1 in self.placements(i):
            image, alpha = self.pasted[k]
            h, w = alpha.shape
            areas[k] = int(np.count_nonzero(alpha > 0.5))
            fx1, fy1, fx2, fy2 = max(x1, 0), max(y1, 0), min(x1 + w, WIDTH), min(y1 + h, HEIGHT)
            if fx2 <= fx1 or fy2 <= fy1:
                continue
            boxes[k] = (float(fx1), float(fy1), float(fx2), float(fy2))
            a = alpha[fy1 - y1:fy2 - y1, fx1 - x1:fx2 - x1, None]
            region = canvas[fy1:fy2, fx1:fx2]
            region *= 1 - a
            region += a * image[fy1 - y1:fy2 - y1, fx1 - x1:fx2 - x1]
            owner[fy1:fy2, fx1:fx2][a[:, :, 0] > 0.5] = k
        canvas[:, PILLAR[0]:PILLAR[1]] = self.pillar
        owner[:, PILLAR[0]:PILLAR[1]] = -1
        noise = np.random.default_rng((self.noise_seed, i)).standard_normal(
            canvas.shape, np.float32)
        canvas += NOISE_SIGMA * noise
        frame = np.clip(canvas, 0, 255).astype(np.uint8)
        seen = np.bincount(owner[owner >= 0].ravel(), minlength=len(self.walkers))
        truth = [Truth(k, box, seen[k] / max(areas[k], 1)) for k, box in sorted(boxes.items())]
        return frame, [t for t in truth if t.visible >= MIN_VISIBLE]


def box_iou(a: Sequence[Tuple[float, ...]], b: Sequence[Tuple[float, ...]]) -> np.ndarray:
    """Return the IoU of every box of ``a`` (x1, y1, x2, y2) with every box of ``b``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)[:, None]
    b = np.asarray(b, np.float64).reshape(-1, 4)[None]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    union = ((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
             + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter)
    return inter / np.maximum(union, 1e-9)


def iou_distances(truth: Sequence[Tuple[float, ...]],
                  boxes: Sequence[Tuple[float, ...]]) -> np.ndarray:
    """
    1 - IoU of every object against every box, NaN past MAX_DISTANCE (no match).

    motmetrics 1.4.0's own (``distances.iou_matrix``) calls np.asfarray, which numpy 2 removed.
    """
    distance = 1 - box_iou(truth, boxes)
    distance[distance > MAX_DISTANCE] = np.nan
    return distance


def score(truths: Sequence[List[Truth]],
          outputs: Sequence[Sequence[Tuple[int, Tuple[float, ...]]]]) -> Dict[str, float]:
    """CLEAR MOT and IDF1 of ``outputs`` (per frame: (ID, box) pairs) against ``truths``."""
    import motmetrics as mm
    accumulator = mm.MOTAccumulator(auto_id=True)
    for truth, output in zip(truths, outputs):
        accumulator.update([t.object_id for t in truth], [tid for tid, _ in output],
                           iou_distances([t.box for t in truth], [b for _, b in output]))
    names = ['mota', 'idf1', 'motp', 'num_switches', 'num_false_positives', 'num_misses',
             'num_objects', 'num_fragmentations', 'mostly_tracked', 'num_unique_objects']
    summary = mm.metrics.create().compute(accumulator, metrics=names, name='run')
    row = {name: float(summary[name].iloc[0]) for name in names}

    def number(value):  # None where there was nothing to score (NaN and inf are no JSON)
        return round(value, 4) if np.isfinite(value) else None

    return {'mota': number(row['mota']), 'idf1': number(row['idf1']),
            'mean_iou': number(1 - row['motp']),
            'id_switches': int(row['num_switches']), 'fp': int(row['num_false_positives']),
            'fn': int(row['num_misses']), 'gt': int(row['num_objects']),
            'fragmentations': int(row['num_fragmentations']),
            'mostly_tracked': f'{int(row["mostly_tracked"])}/{int(row["num_unique_objects"])}'}


def track(detections: Sequence[List[Detection]], every: int, shadow: bool,
          config: TrackerConfig):
    """
    Track with ByteTrack on the detector's frames (every ``every``-th), predict on the others.

    Returns the tracked detections of each camera frame (those without an ID, of tracks not yet
    confirmed, are not tracking output), the time of each update and predict in ms, and the
    tracker's counts.
    """
    from hobot_npu_infer.core.tracking.object_tracker import ObjectTracker
    tracker = ObjectTracker(replace(config, shadow=shadow), SCORE_THRESHOLD)
    outputs, update_ms, predict_ms = [], [], []
    for i, frame_detections in enumerate(detections):
        t = i / FPS
        if i % every == 0:
            start = time.perf_counter()
            result = tracker.update(frame_detections, t)
            update_ms.append((time.perf_counter() - start) * 1e3)
        elif shadow:
            start = time.perf_counter()
            result = tracker.predict(t)
            predict_ms.append((time.perf_counter() - start) * 1e3)
        else:
            result = []
        outputs.append([d for d in result if d.track_id is not None])
    return outputs, update_ms, predict_ms, tracker.counts


def ms(samples: List[float]) -> Dict[str, Optional[float]]:
    if not samples:
        return {'mean': None, 'p99': None}
    summary = summarize(samples)
    return {'mean': round(summary.mean, 3), 'p99': round(summary.p99, 3)}


def evaluate(truths: Sequence[List[Truth]], detections: Sequence[List[Detection]],
             config: TrackerConfig):
    """Score the detector alone (a baseline), then ByteTrack at each rate, shadow on and off."""
    published = [[d for d in frame if d.score >= SCORE_THRESHOLD] for frame in detections]
    baseline = score(truths, [[(i * 1000 + j, d.box) for j, d in enumerate(frame)]
                              for i, frame in enumerate(published)])
    baseline.update(mota=round(1 - (baseline['fp'] + baseline['fn']) / max(baseline['gt'], 1),
                               4), idf1=None, id_switches=None, fragmentations=None,
                    mostly_tracked=None)
    rows = [{'config': 'detector only', 'every': 1, 'detector_hz': FPS, 'shadow': None,
             **baseline, 'track_ids': None, 'update_ms': ms([]), 'predict_ms': ms([])}]
    track(detections[:min(len(detections), 30)], 1, True, config)  # warm-up: imports
    outputs = {}
    for every in RATES:
        for shadow in (True, False):
            name = f'1/{every} {"shadow" if shadow else "no shadow"}'
            out, update_ms, predict_ms, counts = track(detections, every, shadow, config)
            outputs[name] = out
            rows.append({'config': name, 'every': every, 'detector_hz': round(FPS / every, 2),
                         'shadow': shadow, 'track_ids': counts.created,
                         **score(truths, [[(d.track_id, d.box) for d in frame] for frame in out]),
                         'update_ms': ms(update_ms), 'predict_ms': ms(predict_ms)})
    return rows, outputs


COLUMNS = ('config', 'detector Hz', 'MOTA', 'IDF1', 'ID sw', 'FP', 'FN', 'GT', 'mean IoU',
           'MT', 'IDs', 'update ms mean/p99', 'predict ms mean/p99')


def format_table(rows: List[Dict[str, object]]) -> str:
    def cell(value):
        return '-' if value is None else str(value)

    def timing(t):
        return '-' if t['mean'] is None else f'{t["mean"]:.3f} / {t["p99"]:.3f}'

    lines = [' | '.join(COLUMNS), ' | '.join('---' for _ in COLUMNS)]
    for r in rows:
        lines.append(' | '.join([
            r['config'], f'{r["detector_hz"]:g}', cell(r['mota']), cell(r['idf1']),
            cell(r['id_switches']), cell(r['fp']), cell(r['fn']), cell(r['gt']),
            cell(r['mean_iou']), cell(r['mostly_tracked']), cell(r['track_ids']),
            timing(r['update_ms']), timing(r['predict_ms'])]))
    return '\n'.join(lines)


def save_frames(scene: Scene, directory: str, truths, outputs) -> List[str]:
    """Draw the ground truth (white) and SAVED_CONFIG's tracked boxes on a few frames."""
    from hobot_npu_infer.core.imaging.annotate import draw_detections
    os.makedirs(directory, exist_ok=True)
    paths = []
    for i in sorted({round(f * (scene.frames - 1)) for f in SAVE_AT}):
        frame, _ = scene.render(i)
        for truth in truths[i]:
            x1, y1, x2, y2 = (int(v) for v in truth.box)
            cv2.rectangle(frame, (x1, y1), (x2, y2), (255, 255, 255), 1)
            cv2.putText(frame, f'gt {truth.object_id} {truth.visible:.0%}', (x1 + 2, y2 - 4),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        shown = [replace(d, class_name=f'{d.class_name} predicted') if d.predicted else d
                 for d in outputs[i]]  # labelled '#ID class score' in the ID's colour
        frame = draw_detections(frame, shown)
        cv2.putText(frame, f'frame {i}  {SAVED_CONFIG}', (8, 24), cv2.FONT_HERSHEY_SIMPLEX,
                    0.7, (255, 255, 255), 2, cv2.LINE_AA)
        paths.append(os.path.join(directory, f'frame_{i:04d}.png'))
        cv2.imwrite(paths[-1], frame)
    return paths


def main(argv: Optional[List[str]] = None) -> int:
    parser = command_parser('hobot_npu_infer.bench.tracking_bench', __doc__)
    parser.add_argument('--frames', type=int, default=150, help='frames at 30 fps (150)')
    parser.add_argument('--objects', type=int, default=len(SCRIPT),
                        help=f'people in the scene ({len(SCRIPT)}: the scripted ones; more are '
                        'random walkers)')
    parser.add_argument('--seed', type=int, default=0,
                        help='camera noise, step phases and random walkers (0)')
    parser.add_argument('--json', metavar='OUT', default='', help='write the results as JSON')
    parser.add_argument('--save-frames', metavar='DIR', default='',
                        help=f'write a few frames with the ground truth and the {SAVED_CONFIG} '
                        "run's boxes drawn")
    parser.add_argument('--agnostic', action='store_true',
                        help='NMS across the classes and one tracker for all of them, as for a '
                        'model whose classes are states of one object (default: per class)')
    args = parser.parse_args(argv)
    if args.frames < 2 or args.objects < 1:
        raise ConfigError('--frames must be >= 2 and --objects >= 1')
    folder = models_dir()
    config = TrackerConfig(per_class=not args.agnostic)
    low = config.low_threshold
    pipeline = detector(folder, low, args.agnostic)  # decoded down to the tracker's low one
    sprites = cut_sprites(pipeline, folder)
    scene = Scene(sprites, args.frames, args.objects, args.seed)
    pipeline.detect([scene.render(0)[0]])  # warm-up
    truths, detections, detect_ms = [], [], []
    for i in range(args.frames):
        frame, truth = scene.render(i)
        start = time.perf_counter()
        results, _ = pipeline.detect([frame])
        detect_ms.append((time.perf_counter() - start) * 1e3)
        truths.append(truth)
        detections.append(results[0].detections)
    classes = sorted({d.class_name for frame in detections for d in frame})
    rows, outputs = evaluate(truths, detections, config)
    result = {
        'frames': args.frames, 'objects': args.objects, 'seed': args.seed, 'fps': FPS,
        'size': f'{WIDTH}x{HEIGHT}',
        'detector': {'model': DETECTOR, 'decoded_at': low, 'score_threshold': SCORE_THRESHOLD,
                     'ms_per_frame': ms(detect_ms), 'classes_seen': classes,
                     'agnostic_nms': args.agnostic,
                     'nms_threshold': AGNOSTIC_NMS_IOU if args.agnostic else None},
        'sprites': {name: {'box': list(s.box), 'silhouette_box': list(s.silhouette_box),
                           'score': round(s.score, 3), 'torso': s.torso}
                    for name, s in sorted(sprites.items())},
        'ground_truth': {'boxes': sum(len(t) for t in truths), 'min_visible': MIN_VISIBLE,
                         'match_iou': 1 - MAX_DISTANCE},
        'tracker': {k: v for k, v in vars(config).items() if k != 'shadow'},
        'rows': rows}
    if args.save_frames:
        result['saved_frames'] = save_frames(scene, args.save_frames, truths,
                                             outputs[SAVED_CONFIG])
    print(f'{args.frames} frames {WIDTH}x{HEIGHT} at {FPS:g} fps, {args.objects} people, seed '
          f'{args.seed}; detector {DETECTOR} {result["detector"]["ms_per_frame"]["mean"]} ms per '
          f'frame (p99 {result["detector"]["ms_per_frame"]["p99"]})')
    print(format_table(rows))
    print('detector only: no identities (IDs per frame), so MOTA is 1 - (FP + FN) / GT and '
          'IDF1 is not given')
    print(json.dumps(result, indent=2))
    write_json(args.json, result)
    return 0


cli = console_script(main)


if __name__ == '__main__':
    cli()
