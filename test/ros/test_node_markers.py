"""
infer_node's markers over real processes and DDS: CenterFace on the astronaut, drawn for RViz.

The node's own MarkerArray for a real frame: a DELETEALL, the face's box and label where the
detections say, its 5 landmarks as points, in the camera's frame at 1 mm per pixel.
"""

import json

import pytest
from ros_harness import cameras_into_infer_node
from visualization_msgs.msg import Marker, MarkerArray

CAM = '/markers/cam/image_raw'


def stamp(header):
    return (header['stamp']['sec'], header['stamp']['nanosec']) if isinstance(header, dict) \
        else (header.stamp.sec, header.stamp.nanosec)


def test_the_node_publishes_markers_of_its_detections(tmp_path):
    def subscribe(listener):
        listener.subscribe(MarkerArray, f'{CAM}/markers', keep=5)

    def detections_of(frame):
        return [payload for payload in (json.loads(m.data)
                                        for m in listener.received(f'{CAM}/detections'))
                if stamp(payload['header']) == frame]

    with cameras_into_infer_node(tmp_path, [CAM], {}, ['astronaut'], 5.0, 'markers_node',
                                 'markers_listener', subscribe) as (listener, node):
        assert listener.wait_for(lambda: listener.received(f'{CAM}/markers'), timeout=60), \
            node.output()
        array = listener.received(f'{CAM}/markers')[-1]
        frame = stamp(array.markers[0].header)
        assert listener.wait_for(lambda: detections_of(frame), timeout=30)
        [payload] = detections_of(frame)
    [face] = payload['detections']
    assert array.markers[0].action == Marker.DELETEALL
    assert all(m.header.frame_id == 'camera' for m in array.markers)
    [box] = [m for m in array.markers if m.ns == 'boxes']
    [label] = [m for m in array.markers if m.ns == 'labels']
    [points] = [m for m in array.markers if m.ns == 'keypoints']
    corners = [v * 1000 for p in box.points for v in (p.x, p.y)]  # 1 px = 1 mm
    x1, y1, x2, y2 = face['box']
    assert corners == pytest.approx([x2, y2, x2, y1, x1, y1, x1, y2, x2, y2], abs=0.01)
    tracked = f'#{face["track_id"]} ' if 'track_id' in face else ''  # confirmed on the 2nd run
    assert label.text == f'{tracked}face {face["score"]:.2f}'
    assert [v * 1000 for p in points.points for v in (p.x, p.y)] == \
        pytest.approx([v for point in face['keypoints'] for v in point], abs=0.01)
