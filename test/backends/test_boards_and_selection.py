"""
Board detection and backend selection.

Which board this is (from the kernel's files under a fake root), how busy its NPU is, which
backend ``auto`` picks and why, backend options as text, RKNN core masks, and detection matching.
"""

from hobot_npu_infer.core.backends import boards, selection
from hobot_npu_infer.core.backends.boards import Board, bpu_load, detect_board, rockchip_npu_load
from hobot_npu_infer.core.backends.onnxruntime_backend import OnnxRuntimeBackend
from hobot_npu_infer.core.backends.rknn.backend import core_masks
from hobot_npu_infer.core.detection import Detection
from hobot_npu_infer.core.errors import BackendError, ConfigError
from hobot_npu_infer.core.pipeline.detection_match import iou_matrix, match_detections, MatchCounts
import numpy as np
import pytest

COMPATIBLE = 'proc/device-tree/compatible'


def make_root(tmp_path, compatible: bytes = b'', bpu: bool = False, files=None) -> str:
    """Make a file-system root with the files a board's kernel shows."""
    if compatible:
        write(tmp_path, COMPATIBLE, compatible)
    if bpu:
        (tmp_path / 'sys' / 'devices' / 'system' / 'bpu').mkdir(parents=True)
    for relative, data in (files or {}).items():
        write(tmp_path, relative, data)
    return str(tmp_path)


def write(root, relative: str, data) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


# --- detect_board ------------------------------------------------------------------------------


@pytest.mark.parametrize('compatible, soc, cores', [
    (b'radxa,rock-5b\0rockchip,rk3588\0', 'rk3588', 3),
    (b'xunlong,orangepi-5\0rockchip,rk3588s\0', 'rk3588', 3),  # RK3588S: the same NPU
    (b'rockchip,rk3576-evb1-v10\0rockchip,rk3576\0', 'rk3576', 2),
    (b'radxa,zero3\0rockchip,rk3566\0', 'rk3566', 1),
    (b'friendlyelec,nanopi-r5s\0rockchip,rk3568\0', 'rk3568', 1),
])
def test_rockchip_boards(tmp_path, compatible, soc, cores):
    board = detect_board(make_root(tmp_path, compatible))
    assert (board.vendor, board.soc, board.npu_cores) == ('rockchip', soc, cores)
    entry = [e for e in compatible.decode().split('\0') if e.startswith('rockchip,rk35')][-1]
    assert board.evidence == f'{entry} in /{COMPATIBLE}'


def test_d_robotics_board_is_the_bpu_sysfs_directory(tmp_path):
    board = detect_board(make_root(tmp_path, b'hobot,x5-rdk\0hobot,x5\0', bpu=True))
    assert board == Board('d-robotics', 'bpu', '/sys/devices/system/bpu exists')
    assert board.npu_cores == 1


@pytest.mark.parametrize('compatible', [
    b'',  # no device tree at all (a PC)
    b'raspberrypi,4-model-b\0brcm,bcm2711\0',
    b'rockchip,rk3399\0',  # a Rockchip SoC without an RKNPU2 NPU
    b'rockchip,rk3588-something-else\0',  # a board entry, not the SoC's
])
def test_no_npu_board(tmp_path, compatible):
    board = detect_board(make_root(tmp_path, compatible))
    assert (board.vendor, board.soc, board.npu_cores) == ('', '', 1)
    assert board.evidence == (f'no Rockchip SoC in /{COMPATIBLE} and no '
                              f'/sys/devices/system/bpu')


# --- NPU load ----------------------------------------------------------------------------------


@pytest.mark.parametrize('text, load', [
    ('NPU load:  Core0:  0%, Core1:  12%, Core2: 100%,\n',
     {'core0': 0.0, 'core1': 12.0, 'core2': 100.0}),
    ('NPU load:  Core0: 45%, Core1:  3%,\n', {'core0': 45.0, 'core1': 3.0}),
    ('NPU load:  30%\n', {'core0': 30.0}),
    ('NPU load: \n', None),
])
def test_rockchip_npu_load(tmp_path, text, load):
    root = make_root(tmp_path, files={boards.RKNPU_LOAD: text})
    assert rockchip_npu_load(root) == load


def test_rockchip_npu_load_absent(tmp_path):
    assert rockchip_npu_load(make_root(tmp_path)) is None


def test_bpu_load_from_ratio_files(tmp_path):
    bpu = 'sys/devices/system/bpu'
    root = make_root(tmp_path, bpu=True, files={
        f'{bpu}/bpu0/ratio': '37\n', f'{bpu}/bpu1/ratio': '0\n',
        f'{bpu}/bpu2/ratio': 'n/a\n', f'{bpu}/power/ratio': '99\n'})
    assert bpu_load(root) == {'bpu0': 37.0, 'bpu1': 0.0}
    assert bpu_load(make_root(tmp_path / 'empty', bpu=True)) is None
    assert bpu_load(make_root(tmp_path / 'pc')) is None


# --- choose_backend and open_backend ------------------------------------------------------------


def importable(monkeypatch, *modules):
    monkeypatch.setattr(selection, '_importable', lambda name: name in modules)


RK3588 = b'radxa,rock-5b\0rockchip,rk3588\0'


@pytest.mark.parametrize('board, modules, backend, reason', [
    ({'compatible': RK3588}, ['rknnlite'], 'rknn',
     'Rockchip RK3588 board (rockchip,rk3588 in /proc/device-tree/compatible) with rknnlite'),
    ({'compatible': RK3588}, [], 'onnxruntime',
     'Rockchip RK3588 board (rockchip,rk3588 in /proc/device-tree/compatible) but '
     'rknn-toolkit-lite2 (rknnlite) is not installed'),
    ({'compatible': b'rockchip,rk3576\0'}, ['rknnlite', 'hobot_dnn'], 'rknn',
     'Rockchip RK3576 board (rockchip,rk3576 in /proc/device-tree/compatible) with rknnlite'),
    ({'bpu': True}, ['hobot_dnn'], 'hobot',
     'D-Robotics BPU board (/sys/devices/system/bpu exists) with pyeasy_dnn installed'),
    ({'bpu': True}, ['hobot_dnn_rdkx5'], 'hobot',
     'D-Robotics BPU board (/sys/devices/system/bpu exists) with pyeasy_dnn installed'),
    ({'bpu': True}, ['rknnlite'], 'onnxruntime',
     'D-Robotics BPU board (/sys/devices/system/bpu exists) but neither hobot_dnn nor '
     'hobot_dnn_rdkx5 imports'),
    ({}, ['rknnlite', 'hobot_dnn'], 'onnxruntime',
     'no NPU board found (no Rockchip SoC in /proc/device-tree/compatible and no '
     '/sys/devices/system/bpu)'),
])
def test_choose_backend(tmp_path, monkeypatch, board, modules, backend, reason):
    importable(monkeypatch, *modules)
    assert selection.choose_backend(make_root(tmp_path, **board)) == (backend, reason)


def test_importable_is_find_spec():
    assert selection._importable('numpy')
    assert not selection._importable('rknnlite')
    assert not selection._importable('no_such_module_here.sub')


def test_open_backend_auto_picks_onnxruntime_here_and_only_its_options(tmp_path):
    options = {'intra_op_threads': 1, 'onnxruntime.log_severity': 4, 'rknn.core_mask': 'core7',
               'hobot.priority': 3}
    backend, note = selection.open_backend('auto', options, root=make_root(tmp_path))
    assert isinstance(backend, OnnxRuntimeBackend)
    assert note == ('backend auto chose onnxruntime: no NPU board found (no Rockchip SoC in '
                    '/proc/device-tree/compatible and no /sys/devices/system/bpu)')
    assert selection._for('onnxruntime', options) == {'intra_op_threads': 1, 'log_severity': 4}
    assert selection._for('rknn', options) == {'intra_op_threads': 1, 'core_mask': 'core7'}


def test_open_backend_auto_on_this_machine():
    backend, note = selection.open_backend('auto', {'rknn.core_mask': 'core7'})
    assert isinstance(backend, OnnxRuntimeBackend)
    assert note.startswith('backend auto chose onnxruntime: ')


def test_open_backend_by_name_applies_prefixed_options(monkeypatch):
    backend, note = selection.open_backend('onnxruntime', {'onnxruntime.intra_op_threads': 2})
    assert isinstance(backend, OnnxRuntimeBackend) and note == 'backend onnxruntime'
    with pytest.raises(ConfigError, match='bad option for backend onnxruntime'):
        selection.open_backend('onnxruntime', {'core_mask': 'core0'})


def test_parse_options_types():
    assert selection.parse_options([
        'batch_size=4', 'score=0.25', 'quantize=true', 'spin=False', 'mean=0,0.5,127',
        'cores=1,2', 'input_size=640x480', 'dataset=a.png,b.png', ' name = x ', 'empty=',
        'rknn.core_mask=core0_1', 'neg=-3']) == {
        'batch_size': 4, 'score': 0.25, 'quantize': True, 'spin': False,
        'mean': [0, 0.5, 127], 'cores': [1, 2], 'input_size': '640x480',
        'dataset': 'a.png,b.png', 'name': 'x', 'empty': '', 'rknn.core_mask': 'core0_1',
        'neg': -3}
    typed = selection.parse_options(['a=4', 'b=4.0'])
    assert type(typed['a']) is int and type(typed['b']) is float


@pytest.mark.parametrize('item', ['novalue', '=3', ' =x'])
def test_parse_options_refuses_what_is_not_key_value(item):
    with pytest.raises(ConfigError) as error:
        selection.parse_options([item])
    assert str(error.value) == f'option {item!r} is not key=value'


# --- RKNN core masks ---------------------------------------------------------------------------


@pytest.mark.parametrize('spec, soc, runtimes, masks', [
    ('auto', 'rk3588', 3, [1, 2, 4]),
    ('auto', 'rk3588', 4, [1, 2, 4, 1]),
    ('', 'rk3588', 1, [1]),
    ('auto', 'rk3576', 3, [1, 2, 1]),
    ('auto', 'rk3566', 2, [0, 0]),
    ('core0_1_2', 'rk3588', 2, [7, 7]),
    ('core0_1', 'rk3576', 1, [3]),
    ('core1', 'rk3588', 3, [2, 2, 2]),
    ('core2, core1,core0', 'rk3588', 3, [4, 2, 1]),
])
def test_core_masks(spec, soc, runtimes, masks):
    assert core_masks(spec, soc, runtimes) == masks


def test_core_mask_naming_a_missing_core():
    with pytest.raises(BackendError) as error:
        core_masks('core2', 'rk3576', 1)
    assert str(error.value) == ('rknn core_mask core2 names a core rk3576 does not have '
                                '(rk3576 has 2 NPU cores)')
    with pytest.raises(BackendError, match=r'\(rk3566 has 1 NPU core\)'):
        core_masks('core1', 'rk3566', 1)


def test_unknown_core_mask_lists_the_valid_names():
    with pytest.raises(BackendError) as error:
        core_masks('npu0', 'rk3588', 1)
    assert str(error.value) == ("unknown rknn core_mask 'npu0'; use one of auto, core0, core1, "
                                'core2, core0_1, core0_1_2')


def test_core_mask_list_must_name_one_per_runtime():
    with pytest.raises(BackendError) as error:
        core_masks('core0,core1', 'rk3588', 3)
    assert str(error.value) == 'rknn core_mask lists 2 masks for 3 runtimes'


# --- detection matching ------------------------------------------------------------------------


def det(box, class_id=0, score=0.9) -> Detection:
    return Detection(tuple(float(v) for v in box), score, class_id, str(class_id))


def test_iou_matrix_known_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 20, 20]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [5, 5, 5, 9]])
    np.testing.assert_allclose(iou_matrix(a, b), [
        [1.0, 50 / 150, 0.0, 0.0],
        [100 / 400, 100 / 400, 0.0, 0.0],  # touching corners, and a zero-area box: 0
    ])
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 4)
    # Symmetric.
    np.testing.assert_allclose(iou_matrix(b, a), iou_matrix(a, b).T)


def test_match_detections_matched_missed_extra():
    reference = [det((0, 0, 10, 10)), det((100, 100, 120, 120)), det((50, 50, 60, 60))]
    candidate = [det((1, 0, 11, 10)), det((100, 100, 120, 121)), det((200, 200, 210, 210))]
    counts = match_detections(reference, candidate)
    assert (counts.matched, counts.missed, counts.extra) == (2, 1, 1)
    assert sorted(counts.ious) == pytest.approx(sorted([90 / 110, 400 / 420]))
    assert counts.as_dict() == {'matched': 2, 'missed': 1, 'extra': 1,
                                'iou_mean': round((90 / 110 + 400 / 420) / 2, 4),
                                'iou_min': round(90 / 110, 4)}


def test_match_needs_the_same_class_and_the_iou():
    counts = match_detections([det((0, 0, 10, 10), class_id=0)], [det((0, 0, 10, 10), 1)])
    assert (counts.matched, counts.missed, counts.extra) == (0, 1, 1)
    # Class for class: each reference finds its own class even where the other overlaps more.
    reference = [det((0, 0, 10, 10), 0), det((0, 0, 10, 10), 1)]
    candidate = [det((0, 0, 10, 10), 1), det((2, 0, 12, 10), 0)]
    counts = match_detections(reference, candidate)
    assert (counts.matched, counts.missed, counts.extra) == (2, 0, 0)
    assert sorted(counts.ious) == pytest.approx([80 / 120, 1.0])
    # Below min_iou is no match.
    low = match_detections([det((0, 0, 10, 10))], [det((5, 0, 15, 10))], min_iou=0.5)
    assert (low.matched, low.missed, low.extra) == (0, 1, 1)
    assert match_detections([det((0, 0, 10, 10))], [det((5, 0, 15, 10))], 0.3).matched == 1


def test_match_is_greedy_and_one_to_one():
    # One candidate overlaps both references: it goes to the better one, the other is missed.
    reference = [det((0, 0, 10, 10)), det((1, 0, 11, 10))]
    counts = match_detections(reference, [det((1, 0, 11, 10))])
    assert (counts.matched, counts.missed, counts.extra) == (1, 1, 0)
    assert counts.ious == [1.0]
    # Greedy by IoU, highest first, not the most matches: A takes C (0.9) before B can (0.64);
    # D overlaps only A (0.6), so B is missed and D is extra, though A-D and B-C would pair all.
    a, b = (0, 0, 100, 10), (30, 0, 120, 10)
    c, d = (10, 0, 100, 10), (0, 0, 60, 10)
    counts = match_detections([det(a), det(b)], [det(d), det(c)])
    assert (counts.matched, counts.missed, counts.extra) == (1, 1, 1)
    assert counts.ious == pytest.approx([0.9])
    # Two identical candidates for one reference: one match, one extra.
    counts = match_detections([det(a)], [det(a), det(a)])
    assert (counts.matched, counts.missed, counts.extra) == (1, 0, 1)


def test_match_with_nothing_on_one_side():
    assert vars(match_detections([], [])) == vars(MatchCounts())
    counts = match_detections([det((0, 0, 1, 1))], [])
    assert (counts.matched, counts.missed, counts.extra) == (0, 1, 0)
    counts = match_detections([], [det((0, 0, 1, 1)), det((2, 2, 3, 3))])
    assert (counts.matched, counts.missed, counts.extra) == (0, 0, 2)
    total = MatchCounts()
    total.add(counts)
    total.add(MatchCounts(matched=1, ious=[0.75]))
    assert total.as_dict() == {'matched': 1, 'missed': 0, 'extra': 2, 'iou_mean': 0.75,
                               'iou_min': 0.75}
