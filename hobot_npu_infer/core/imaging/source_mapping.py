"""
Detections in model-input pixels mapped back into the source image, masks included.

Boxes and keypoints go through the inverse letterbox (or stretch). Instance masks follow
Ultralytics' ``process_mask`` then ``scale_masks``, the same operations in the same order:
prototype logits, bilinear up to input pixels, ``> 0``, crop to the box, then the letterbox's
content bilinear to source pixels, ``> 0.5``. Each is computed only over its box's region, so
the cost follows the boxes, not the frame; OpenCV's ``warpAffine`` interpolates (its 1/32 pixel
grid is exact for the prototypes' 4x, and elsewhere moves a boundary pixel now and then).
Semantic class maps go through the inverse letterbox by nearest neighbour, as Ultralytics'
semantic predictor does.
"""

from typing import List, NamedTuple, Tuple

import cv2
from hobot_npu_infer.core.decoders.semantic import class_extents
from hobot_npu_infer.core.detection import Detection, InstanceMask, RawDetections
from hobot_npu_infer.core.imaging.geometry import ImageTransform
import numpy as np

# Scales this close are a letterbox's (rounding makes them differ slightly): rotated boxes keep
# their angle, as Ultralytics maps them; farther apart (stretch) rotated boxes are refitted.
UNIFORM_SCALE = 0.01


def to_source(raw: RawDetections, transform: ImageTransform, input_size: Tuple[int, int],
              task: str = 'detect') -> RawDetections:
    """
    Map one image's detections from the ``input_size`` (W, H) model input into the source.

    Keypoints are left where they fall (a face's landmarks may lie beyond the image) except for
    ``task`` pose: Ultralytics clips pose keypoints to the image. A classification is of the
    whole image, whatever part of it the model saw (a centre crop). Segment detections get
    their instance masks; one whose mask is empty in model-input pixels is dropped, as
    Ultralytics drops it. Semantic detections get their class's pixels and, as their box, the
    bounds of those pixels; ``class_map`` becomes the source image's.
    """
    if raw.angles is not None:
        boxes, angles = rotated_to_source(raw.boxes, raw.angles, transform)
    elif task == 'classify':
        whole = np.float32([0, 0, *transform.source_size])
        boxes, angles = np.tile(whole, (len(raw.boxes), 1)), None
    else:
        boxes, angles = transform.boxes_to_source(raw.boxes), None
    keypoints = None if raw.keypoints is None else transform.points_to_source(raw.keypoints)
    if keypoints is not None and task == 'pose':
        np.clip(keypoints, 0, transform.source_size, out=keypoints)
    mapped = raw._replace(boxes=boxes, angles=angles, protos=None, keypoints=keypoints)
    if raw.protos is not None and raw.mask_coefficients is not None:
        return with_instance_masks(mapped, raw, transform, input_size)
    if raw.class_map is not None:
        return with_class_masks(mapped, transform, input_size)
    return mapped


def rotated_to_source(boxes: np.ndarray, angles: np.ndarray,
                      transform: ImageTransform) -> Tuple[np.ndarray, np.ndarray]:
    """
    Map rotated boxes (unrotated x1 y1 x2 y2 about the centre, angle) into the source.

    Not clipped. Through a letterbox the angle is kept and the centre and size are scaled, as
    Ultralytics' ``scale_boxes(xywh=True)``; through a stretch a rotated rectangle becomes a
    parallelogram, and the smallest rotated rectangle around it is taken.
    """
    if abs(transform.scale_x / transform.scale_y - 1) < UNIFORM_SCALE:
        return transform.points_to_source(boxes.reshape(-1, 2, 2)).reshape(-1, 4), angles
    out_boxes, out_angles = np.zeros_like(boxes, np.float32), np.zeros_like(angles, np.float32)
    for i, (box, angle) in enumerate(zip(boxes, angles)):
        corners = Detection(tuple(box), 0.0, 0, '', angle=float(angle)).corners()
        (cx, cy), (w, h), degrees = cv2.minAreaRect(transform.points_to_source(corners))
        out_boxes[i] = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        out_angles[i] = np.deg2rad(degrees)
    return out_boxes, out_angles


# --- instance masks -----------------------------------------------------------------------------

class Resize(NamedTuple):
    """One axis of ``F.interpolate(mode='bilinear', align_corners=False)``, in to out pixels."""

    scale: float  # input pixels per output pixel
    low: np.ndarray  # per output pixel, the first input pixel it samples
    high: np.ndarray  # and the second (the same one at the far edge)

    @classmethod
    def of(cls, in_size: int, out_size: int) -> 'Resize':
        scale = in_size / out_size
        position = np.maximum((np.arange(out_size) + 0.5) * scale - 0.5, 0)  # clamped, as PyTorch
        low = np.minimum(position.astype(np.int64), in_size - 1)
        return cls(scale, low, np.minimum(low + 1, in_size - 1))

    def sampled(self, start: int, stop: int) -> Tuple[int, int]:
        """Return the input pixels that outputs ``start..stop-1`` sample, as a range."""
        return int(self.low[start]), int(self.high[stop - 1]) + 1

    def reaching(self, first: int, end: int) -> Tuple[int, int]:
        """Return the outputs that sample any of input pixels ``first..end-1``, as a range."""
        return (int(np.searchsorted(self.high, first)),
                int(np.searchsorted(self.low, end - 1, side='right')))


def resample(values: np.ndarray, across: Resize, down: Resize, x: Tuple[int, int],
             y: Tuple[int, int], origin: Tuple[int, int]) -> np.ndarray:
    """
    Return outputs ``x`` by ``y`` (ranges) of a bilinear resize (``across``, ``down``).

    ``values`` holds the input pixels from ``origin`` (x, y) on, every pixel those outputs
    sample. Sampling before the first pixel takes the first (a replicated border), which is
    PyTorch's clamp where ``values`` reach the input's edge.
    """
    affine = np.array([[across.scale, 0, across.scale * (x[0] + 0.5) - 0.5 - origin[0]],
                       [0, down.scale, down.scale * (y[0] + 0.5) - 0.5 - origin[1]]])
    return cv2.warpAffine(values, affine, (x[1] - x[0], y[1] - y[0]),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def content_size(source: int, scale: float, pad: int, input_size: int) -> int:
    """Return how many input pixels the source image spans along one axis (past ``pad``)."""
    return min(max(round(source * scale), 1), input_size - pad)


def box_span(low: float, high: float, size: int) -> Tuple[int, int]:
    """Return the pixels ``r`` with ``low <= r < high`` within ``0..size-1``, as a range."""
    return max(int(np.ceil(low)), 0), min(int(np.ceil(high)), size)


class Unletterbox(NamedTuple):
    """Model-input pixels of the letterbox's content to source pixels, along one axis."""

    offset: int  # the content's first input pixel (the pad)
    content: int  # how many input pixels the content spans
    resize: Resize  # content pixels to source pixels

    @classmethod
    def of(cls, source: int, scale: float, pad: int, input_size: int) -> 'Unletterbox':
        content = content_size(source, scale, pad, input_size)
        return cls(pad, content, Resize.of(content, source))

    def span(self, start: int, stop: int) -> Tuple[int, int, int, int]:
        """
        Return two ranges: the content pixels among input pixels ``start..stop-1``.

        And the source pixels whose bilinear sample touches one of them.
        """
        first, end = max(start - self.offset, 0), min(stop - self.offset, self.content)
        if first >= end:
            return first, first, 0, 0
        return (first, end) + self.resize.reaching(first, end)


def instance_mask(inside: np.ndarray, x0: int, y0: int, across: Unletterbox,
                  down: Unletterbox) -> InstanceMask:
    """
    Return the source pixels of a mask in input pixels, through the letterbox's content.

    ``inside`` covers the input pixels from (``x0``, ``y0``); everything outside it is empty.
    """
    a, b, sx0, sx1 = across.span(x0, x0 + inside.shape[1])
    c, d, sy0, sy1 = down.span(y0, y0 + inside.shape[0])
    if sx0 >= sx1 or sy0 >= sy1:  # all in the letterbox's pad bands
        return InstanceMask(sx0, sy0, np.zeros((0, 0), bool))
    # One pixel around the crop: empty beyond the box, the edge pixel beyond the content's edge.
    window = np.zeros((d - c + 2, b - a + 2), np.float32)
    window[1:-1, 1:-1] = inside[c + down.offset - y0:d + down.offset - y0,
                                a + across.offset - x0:b + across.offset - x0]
    if a == 0:
        window[:, 0] = window[:, 1]
    if b == across.content:
        window[:, -1] = window[:, -2]
    if c == 0:
        window[0] = window[1]
    if d == down.content:
        window[-1] = window[-2]
    bitmap = resample(window, across.resize, down.resize, (sx0, sx1), (sy0, sy1),
                      (a - 1, c - 1)) > 0.5
    return InstanceMask(sx0, sy0, bitmap)


def with_instance_masks(mapped: RawDetections, raw: RawDetections, transform: ImageTransform,
                        input_size: Tuple[int, int]) -> RawDetections:
    """Return ``mapped`` with each detection's mask, without those whose mask is empty."""
    m, ph, pw = raw.protos.shape
    w_in, h_in = input_size
    up_x, up_y = Resize.of(pw, w_in), Resize.of(ph, h_in)
    w_src, h_src = transform.source_size
    across = Unletterbox.of(w_src, transform.scale_x, transform.pad_x, w_in)
    down = Unletterbox.of(h_src, transform.scale_y, transform.pad_y, h_in)
    keep: List[int] = []
    masks: List[InstanceMask] = []
    for i, (box, coefficients) in enumerate(zip(raw.boxes, raw.mask_coefficients)):
        x0, x1 = box_span(box[0], box[2], w_in)
        y0, y1 = box_span(box[1], box[3], h_in)
        if x0 >= x1 or y0 >= y1:
            continue
        c0, c1 = up_x.sampled(x0, x1)
        r0, r1 = up_y.sampled(y0, y1)
        logits = coefficients @ raw.protos[:, r0:r1, c0:c1].reshape(m, -1)
        inside = resample(logits.reshape(r1 - r0, c1 - c0), up_x, up_y, (x0, x1), (y0, y1),
                          (c0, r0)) > 0
        if inside.any():
            keep.append(i)
            masks.append(instance_mask(inside, x0, y0, across, down))
    return mapped.select(np.asarray(keep, np.int64))._replace(masks=masks)


# --- semantic masks -----------------------------------------------------------------------------

def nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """Return PyTorch's ``F.interpolate(mode='nearest')`` source index of each output pixel."""
    if in_size == out_size:
        return np.arange(out_size)
    scale = np.float32(in_size / out_size)
    index = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(index, in_size - 1)


def source_cells(map_size: int, input_size: int, source: int, scale: float,
                 pad: int) -> np.ndarray:
    """
    Return the class-map cell of each source pixel along one axis.

    As Ultralytics: the map resized to the input, the content cropped, resized to the source.
    """
    content = content_size(source, scale, pad, input_size)
    return nearest_index(map_size, input_size)[pad + nearest_index(content, source)]


def with_class_masks(mapped: RawDetections, transform: ImageTransform,
                     input_size: Tuple[int, int]) -> RawDetections:
    """Return ``mapped`` with each class's source pixels; a class left with none is dropped."""
    class_map = mapped.class_map
    w_src, h_src = transform.source_size
    rows = source_cells(class_map.shape[0], input_size[1], h_src, transform.scale_y,
                        transform.pad_y)
    cols = source_cells(class_map.shape[1], input_size[0], w_src, transform.scale_x,
                        transform.pad_x)
    source_map = class_map[rows][:, cols]
    classes, _, extents = class_extents(source_map)
    found = np.searchsorted(classes, mapped.class_ids)
    present = found < len(classes)
    present[present] = classes[found[present]] == mapped.class_ids[present]
    kept = mapped.select(present)
    extents = extents[found[present]]
    masks = [InstanceMask(int(x0), int(y0), source_map[y0:y1, x0:x1] == class_id)
             for (x0, y0, x1, y1), class_id in zip(extents, kept.class_ids)]
    return kept._replace(boxes=extents.astype(np.float32), masks=masks, class_map=source_map)
