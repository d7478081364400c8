"""
A second model on the crops of the first model's detections.

Re-identification after detection, attribute classification. Crops of all images of a batch
run together, in batches of the crop model's size, and each output is attached to the
detection it came from.
"""

from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

from hobot_npu_infer.core.backends import Backend, Model
from hobot_npu_infer.core.detection import class_name, Detection
from hobot_npu_infer.core.errors import ConfigError
from hobot_npu_infer.core.pipeline.preprocess import PreprocessConfig, Preprocessor
import numpy as np

OUTPUTS = ('class', 'embedding')


@dataclass
class CropConfig:
    model: str = ''  # a model file; empty: no second stage
    output: str = 'class'  # 'class': argmax and score of the output; 'embedding': the vector
    margin: float = 0.1  # added on each side, as a fraction of the box's width and height
    class_names: Sequence[str] = ()
    max_batch: int = 16  # crops per run for a dynamic-batch crop model
    preprocess: Dict[str, object] = field(default_factory=lambda: {'resize': 'stretch'})

    def validate(self) -> None:
        if self.output not in OUTPUTS:
            raise ConfigError(f'crop output must be one of {OUTPUTS}, got {self.output!r}')
        if not 0.0 <= self.margin <= 2.0:
            raise ConfigError(f'crop margin must be within 0..2, got {self.margin}')
        if self.max_batch < 1:
            raise ConfigError(f'crop max_batch must be >= 1, got {self.max_batch}')


def crop_box(image: np.ndarray, box: Tuple[float, ...], margin: float) -> Optional[np.ndarray]:
    """Crop the box grown by ``margin`` on each side and clipped to the image; None when empty."""
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    h, w = image.shape[:2]
    left, top = max(0, int(np.floor(x1 - mx))), max(0, int(np.floor(y1 - my)))
    right, bottom = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
    if right <= left or bottom <= top:
        return None
    return image[top:bottom, left:right]


def _probabilities(vector: np.ndarray) -> np.ndarray:
    """Return the output as probabilities: kept if it already is one, else a softmax of logits."""
    if np.all(vector >= 0) and abs(float(vector.sum()) - 1.0) < 1e-3:
        return vector
    exp = np.exp(vector - vector.max())
    return exp / exp.sum()


class CropStage:

    def __init__(self, runtimes: List[Model], config: CropConfig):
        config.validate()
        self.runtimes = runtimes
        self.config = config
        model = runtimes[0]
        self.preprocessor = Preprocessor(PreprocessConfig(**config.preprocess), model.inputs[0])
        self.step = model.batch.fixed_size or config.max_batch

    @classmethod
    def load(cls, backend: Backend, config: CropConfig, runtimes: int) -> 'CropStage':
        try:
            return cls([backend.load(config.model)[0] for _ in range(runtimes)], config)
        except TypeError as exc:
            raise ConfigError(f'bad crop pre-processing option: {exc}') from None

    def attach(self, images: Sequence[Tuple[np.ndarray, str]],
               detections: List[List[Detection]], runtime: int = 0) -> List[List[Detection]]:
        """
        Return ``detections`` with each one's crop output in ``attributes``.

        ``images`` are the original images (array, channel order) the boxes refer to.
        """
        crops, orders, owners = [], [], []
        for i, ((image, order), found) in enumerate(zip(images, detections)):
            for j, det in enumerate(found):
                crop = crop_box(image, det.box, self.config.margin)
                if crop is not None:
                    crops.append(crop)
                    orders.append(order)
                    owners.append((i, j))
        if not crops:
            return detections
        model = self.runtimes[runtime % len(self.runtimes)]
        vectors = []
        for start in range(0, len(crops), self.step):
            batch = self.preprocessor.prepare(crops[start:start + self.step],
                                              orders[start:start + self.step],
                                              model.batch.fixed_size)
            output = model.run([batch.tensor])[0]
            vectors.extend(output[:len(batch.transforms)].reshape(len(batch.transforms), -1))
        result = [list(found) for found in detections]
        for (i, j), vector in zip(owners, vectors):
            result[i][j] = replace(result[i][j], attributes=self._attributes(vector))
        return result

    def _attributes(self, vector: np.ndarray) -> Dict[str, object]:
        vector = vector.astype(np.float64)
        if self.config.output == 'embedding':
            norm = float(np.linalg.norm(vector))
            return {'embedding': [round(float(v), 6) for v in (vector / norm if norm else vector)]}
        probabilities = _probabilities(vector)
        class_id = int(np.argmax(probabilities))
        return {'crop_class_id': class_id,
                'crop_class_name': class_name(self.config.class_names, class_id),
                'crop_score': round(float(probabilities[class_id]), 5)}
