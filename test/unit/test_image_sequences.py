"""Frame sources for test and demo cameras: sample names, files, directories and videos."""

import itertools
import os

import cv2
from hobot_npu_infer.core.errors import ImageError, InferError
from hobot_npu_infer.core.imaging.image_sequences import frames, IMAGE_EXTENSIONS, list_images
from hobot_npu_infer.core.imaging.sample_images import load_sample, SAMPLE_NAMES, sample_names
import numpy as np
import pytest

VIDEO_VALUES = [20, 60, 100, 140, 180]  # one constant grey level per video frame
VIDEO_SIZE = (64, 48)  # (W, H)
MJPG_TOLERANCE = 8  # JPEG compression moves a flat grey level by a few units


def take(iterator, n):
    return list(itertools.islice(iterator, n))


def flat(value, size=(40, 30), channels=3):
    w, h = size
    return np.full((h, w, channels) if channels else (h, w), value, np.uint8)


def level(frame):
    return float(frame.mean())


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('video') / 'clip.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 10, VIDEO_SIZE)
    assert writer.isOpened()
    for value in VIDEO_VALUES:
        writer.write(flat(value, VIDEO_SIZE))
    writer.release()
    return path


def assert_levels(frames_, expected):
    assert len(frames_) == len(expected)
    for frame, value in zip(frames_, expected):
        assert abs(level(frame) - value) <= MJPG_TOLERANCE, (level(frame), value)


# --- sample names --------------------------------------------------------------------------------

def test_sample_names():
    assert sample_names() == list(SAMPLE_NAMES)
    assert 'astronaut' in sample_names()


@pytest.mark.parametrize('name', ['astronaut', 'camera'])  # colour and grey originals
def test_a_sample_name_is_a_looping_still_in_bgr(name):
    expected = load_sample(name)
    assert expected.ndim == 3 and expected.shape[2] == 3 and expected.dtype == np.uint8
    stills = take(frames(name), 3)
    assert len(stills) == 3
    for still in stills:
        np.testing.assert_array_equal(still, expected)


def test_a_sample_is_bgr_not_rgb():
    import skimage.data
    rgb = skimage.data.astronaut()
    [bgr] = list(frames('astronaut', loop=False))
    np.testing.assert_array_equal(bgr[:, :, ::-1], rgb)


def test_a_sample_without_looping_is_one_frame():
    assert len(list(frames('coffee', loop=False))) == 1


def test_a_sample_resized():
    [still] = list(frames('astronaut', size=(160, 120), loop=False))
    assert still.shape == (120, 160, 3)


def test_an_unknown_sample_name_is_an_image_error():
    with pytest.raises(ImageError, match="unknown sample image 'nope'"):
        load_sample('nope')


# --- files and directories -----------------------------------------------------------------------

def test_an_image_file_loops(tmp_path):
    path = str(tmp_path / 'one.png')
    cv2.imwrite(path, flat(77))
    stills = take(frames(path), 4)
    assert len(stills) == 4
    assert all(s.shape == (30, 40, 3) and (s == 77).all() for s in stills)
    assert len(list(frames(path, loop=False))) == 1


@pytest.mark.parametrize('channels,stored', [(0, 'grey'), (4, 'bgra')])
def test_grey_and_alpha_files_become_bgr(tmp_path, channels, stored):
    path = str(tmp_path / f'{stored}.png')
    image = flat(90, channels=channels)
    if channels == 4:
        image[:, :, 3] = 10  # a mostly transparent alpha channel is dropped, not blended
    cv2.imwrite(path, image)
    [still] = list(frames(path, loop=False))
    assert still.shape == (30, 40, 3)
    assert (still == 90).all()


def test_an_image_file_resized(tmp_path):
    path = str(tmp_path / 'one.png')
    cv2.imwrite(path, flat(50, (400, 300)))
    [still] = list(frames(path, size=(100, 50), loop=False))
    assert still.shape == (50, 100, 3)
    assert (still == 50).all()


def test_a_directory_in_sorted_order_ignoring_non_images(tmp_path):
    values = {'b.png': 20, 'a.png': 10, 'd.PNG': 40, 'c.bmp': 30}  # written out of order
    for name, value in values.items():
        cv2.imwrite(str(tmp_path / name), flat(value))
    (tmp_path / 'notes.txt').write_text('not an image')
    (tmp_path / 'e.png.bak').write_bytes(b'not an image either')
    (tmp_path / 'sub').mkdir()
    cv2.imwrite(str(tmp_path / 'sub' / '0.png'), flat(99))  # not descended into
    assert [os.path.basename(p) for p in list_images(str(tmp_path))] == \
        ['a.png', 'b.png', 'c.bmp', 'd.PNG']
    once = list(frames(str(tmp_path), loop=False))
    assert [int(f[0, 0, 0]) for f in once] == [10, 20, 30, 40]
    looped = take(frames(str(tmp_path)), 10)
    assert [int(f[0, 0, 0]) for f in looped] == [10, 20, 30, 40] * 2 + [10, 20]


def test_a_directory_of_different_sizes_resized_to_one(tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), flat(10, (40, 30)))
    cv2.imwrite(str(tmp_path / 'b.jpg'), flat(20, (200, 100)))
    shapes = [f.shape for f in frames(str(tmp_path), size=(64, 48), loop=False)]
    assert shapes == [(48, 64, 3), (48, 64, 3)]


def test_an_empty_directory_is_an_error(tmp_path):
    (tmp_path / 'readme.txt').write_text('no images here')
    with pytest.raises(ImageError) as error:
        frames(str(tmp_path))
    message = str(error.value)
    assert str(tmp_path) in message and '\n' not in message
    assert all(ext in message for ext in IMAGE_EXTENSIONS)


def test_an_unreadable_image_file_is_an_error(tmp_path):
    path = tmp_path / 'broken.png'
    path.write_bytes(b'\x89PNG but not really')
    with pytest.raises(ImageError, match='cannot decode image'):
        frames(str(path))


# --- videos --------------------------------------------------------------------------------------

def test_a_video_without_looping_ends_after_its_frames(video):
    clip = list(frames(video, loop=False))
    assert all(f.shape == (VIDEO_SIZE[1], VIDEO_SIZE[0], 3) for f in clip)
    assert_levels(clip, VIDEO_VALUES)


def test_a_video_loops_from_its_start(video):
    iterator = frames(video)
    clip = take(iterator, 2 * len(VIDEO_VALUES) + 2)
    iterator.close()  # releases the capture
    assert_levels(clip, VIDEO_VALUES * 2 + VIDEO_VALUES[:2])


def test_a_video_resized(video):
    clip = list(frames(video, size=(32, 40), loop=False))
    assert [f.shape for f in clip] == [(40, 32, 3)] * len(VIDEO_VALUES)
    assert_levels(clip, VIDEO_VALUES)


def test_a_missing_video_is_an_error_at_once(tmp_path):
    path = str(tmp_path / 'missing.mp4')
    with pytest.raises(ImageError, match='video file not found'):
        frames(path)


def test_an_unreadable_video_is_an_error(tmp_path):
    path = tmp_path / 'garbage.avi'
    path.write_text('not a video')
    with pytest.raises(ImageError) as error:
        frames(str(path))
    assert str(path) in str(error.value)


# --- unknown specs -------------------------------------------------------------------------------

@pytest.mark.parametrize('spec', ['no-such-sample', '/no/such/file.png', '/no/such/dir/', ''])
def test_an_unknown_spec_is_an_image_error_with_a_one_line_message(spec):
    with pytest.raises(ImageError) as error:
        frames(spec)
    assert isinstance(error.value, InferError)
    message = str(error.value)
    assert '\n' not in message
    assert repr(spec) in message
    assert 'astronaut' in message  # it names the samples one could use
