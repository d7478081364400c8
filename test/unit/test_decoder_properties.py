"""
Decoders against garbage.

Decoders against garbage: random shapes and values (NaN, infinities, huge numbers) give
detections or a counted OutputLayoutError, never any other exception.
"""

from hobot_npu_infer.core.decoders import create_decoder
from hobot_npu_infer.core.errors import OutputLayoutError
from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np

SPECIAL = [np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, 0.5, 1.0]


@st.composite
def tensors(draw, max_rank=4):
    rank = draw(st.integers(1, max_rank))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=rank, max_size=rank)))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape).astype(np.float32) * draw(st.sampled_from([1, 10, 1e4]))
    if values.size and draw(st.booleans()):
        flat = values.reshape(-1)
        for index in rng.integers(0, flat.size, size=min(3, flat.size)):
            flat[index] = draw(st.sampled_from(SPECIAL))
    return values


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(['centerface', 'yolov8', 'yolov5', 'ssd']),
       outputs=st.lists(tensors(), min_size=0, max_size=5),
       threshold=st.sampled_from([0.0, 0.25, 0.5, 0.99]))
def test_garbage_outputs_never_raise_anything_else(name, outputs, threshold):
    decoder = create_decoder(name)
    try:
        results = decoder.decode(outputs, (64, 48), threshold)
    except OutputLayoutError as exc:
        assert '\n' not in str(exc)
        return
    for raw in results:
        assert raw.boxes.shape[1:] == (4,) and len(raw.scores) == len(raw.boxes)


@settings(max_examples=100, deadline=None, database=None)
@given(seed=st.integers(0, 2 ** 31 - 1), special=st.sampled_from(SPECIAL))
def test_well_shaped_centerface_outputs_with_bad_values(seed, special):
    rng = np.random.default_rng(seed)
    outputs = [rng.random((2, c, 6, 8)).astype(np.float32) for c in (1, 2, 2, 10)]
    outputs[int(rng.integers(0, 4))][0, 0, 1, 1] = special
    results = create_decoder('centerface').decode(outputs, (32, 24), 0.5)
    assert len(results) == 2
    for raw in results:
        assert raw.keypoints.shape == (len(raw.scores), 5, 2)
