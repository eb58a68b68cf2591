"""VGGFace2 ResNet-50 (2048-D), rebuilt in Keras 3, loading the weights of the old keras-vggface.

Part of the optional ``tensorflow`` extra: without it, choosing this model is one VisionError line
naming the extra (checked before anything else, the weights file included).

The user supplies ``rcmalli_vggface_tf_notop_resnet50.h5`` (published with keras-vggface 0.6 by
rcmalli; it cannot be downloaded here, and keras-vggface itself no longer imports under Keras 3).
Pass its path, or put it at ``~/.facestation/models/`` or in ``$FACESTATION_MODELS``.

That file names its layers like ``conv1/7x7_s2`` and ``conv2_1_1x1_reduce/bn``; Keras 3 forbids
``/`` in layer names, so here every ``/`` is written ``__`` and the weights are read from the h5
file with h5py by the original names (legacy Keras 2 ``save_weights`` layout: a group per layer
whose ``weight_names`` attribute lists its arrays). The architecture and names follow
keras-vggface's ``RESNET50``; the 2048-D embedding is the global average pool after stage 5.

Preprocessing is that model's own (keras-vggface ``preprocess_input(version=2)``): BGR channel
order, minus the means (91.4953, 103.8827, 131.0912), no scaling.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vision.align import VGGFACE_TEMPLATE
from vision.embedders.base import BaseEmbedder
from vision.embedders.calibrated import VGGFACE2_IDENTIFICATION_THRESHOLD, VGGFACE2_VERIFICATION_THRESHOLD
from vision.runtimes import require_tensorflow
from vision.tf_runtime import tensorflow
from vision.types import VisionError

WHAT = "the vggface2-2048 model"

WEIGHTS_FILE = "rcmalli_vggface_tf_notop_resnet50.h5"
BGR_MEANS = np.array([91.4953, 103.8827, 131.0912], np.float32)
# (stage, blocks, bottleneck width, output width)
STAGES = ((2, 3, 64, 256), (3, 4, 128, 512), (4, 6, 256, 1024), (5, 3, 512, 2048))


def keras_name(h5_name: str) -> str:
    return h5_name.replace("/", "__")


def h5_name(keras_layer_name: str) -> str:
    return keras_layer_name.replace("__", "/")


def default_weights_path() -> Path:
    folder = os.environ.get("FACESTATION_MODELS")
    base = Path(folder) if folder else Path.home() / ".facestation" / "models"
    return base / WEIGHTS_FILE


def build_resnet50(input_size: int = 224) -> Any:
    """The keras-vggface RESNET50 (include_top=False, pooling='avg') as a Keras 3 functional model."""
    tf = tensorflow(WHAT)
    layers = tf.keras.layers

    def conv_bn(x: Any, filters: int, kernel: int, name: str, strides: int = 1, relu: bool = True) -> Any:
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=keras_name(name))(x)
        x = layers.BatchNormalization(axis=3, name=keras_name(name + "/bn"))(x)
        return layers.Activation("relu")(x) if relu else x

    def block(x: Any, stage: int, index: int, width: int, out: int, strides: int) -> Any:
        prefix = f"conv{stage}_{index}"
        y = conv_bn(x, width, 1, prefix + "_1x1_reduce", strides=strides)
        y = conv_bn(y, width, 3, prefix + "_3x3")
        y = conv_bn(y, out, 1, prefix + "_1x1_increase", relu=False)
        shortcut = conv_bn(x, out, 1, prefix + "_1x1_proj", strides=strides, relu=False) if index == 1 else x
        return layers.Activation("relu")(layers.add([y, shortcut]))

    inputs = layers.Input((input_size, input_size, 3), name="input")
    x = conv_bn(inputs, 64, 7, "conv1/7x7_s2", strides=2)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    for stage, blocks, width, out in STAGES:
        for index in range(1, blocks + 1):
            strides = 2 if index == 1 and stage > 2 else 1
            x = block(x, stage, index, width, out, strides)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return tf.keras.Model(inputs, x, name="vggface2_resnet50")


def load_h5_weights(model: Any, path: Path) -> int:
    """Set every weighted layer of ``model`` from the h5 file's layer of the same (unmapped) name.

    Returns how many layers were loaded; raises VisionError naming the first layer that is missing
    or whose shapes differ.
    """
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py comes with tensorflow
        raise VisionError("reading VGGFace2 weights needs h5py (pip install h5py)") from exc
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise VisionError(f"{path} is not an HDF5 weights file: {exc}") from exc
    loaded = 0
    with handle:
        root = handle.get("model_weights", handle)
        for layer in model.layers:
            targets = layer.weights
            if not targets:
                continue
            name = h5_name(layer.name)
            if name not in root:
                raise VisionError(f"{path.name} has no layer {name!r}; is it {WEIGHTS_FILE}?")
            group = root[name]
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
            by_kind = {n.rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[n]) for n in names}
            values = []
            for weight in targets:
                kind = weight.name.rsplit("/", 1)[-1].split(":")[0]
                value = by_kind.get(kind)
                if value is None or tuple(value.shape) != tuple(weight.shape):
                    got = None if value is None else value.shape
                    raise VisionError(
                        f"{path.name}: layer {name!r} weight {kind!r} is {got}, expected {tuple(weight.shape)}"
                    )
                values.append(value)
            layer.set_weights(values)
            loaded += 1
    return loaded


class VggFace2Embedder(BaseEmbedder):
    name = "vggface2-2048"
    dim = 2048
    crop_size = 224
    template = VGGFACE_TEMPLATE
    # Not calibrated here: the real weights are not available on this machine (see vision.embedders.calibrated).
    verification_threshold = VGGFACE2_VERIFICATION_THRESHOLD
    default_threshold = VGGFACE2_IDENTIFICATION_THRESHOLD
    batch_size = 16

    def __init__(self, weights: Path | None = None) -> None:
        super().__init__()
        require_tensorflow(WHAT)
        path = Path(weights) if weights is not None else default_weights_path()
        if not path.is_file():
            raise VisionError(
                f"the vggface2-2048 model needs the weights file {WEIGHTS_FILE}, which is not at {path}. "
                "It was published with keras-vggface (rcmalli) and is not downloaded by FaceStation: "
                "you must supply it yourself (put it there, set FACESTATION_MODELS, or pass its path)."
            )
        self.weights_path = path
        tf = tensorflow(WHAT)
        self._model = build_resnet50(self.crop_size)
        load_h5_weights(self._model, path)
        self._fn = tf.function(
            lambda x: self._model(x, training=False),
            input_signature=[tf.TensorSpec([None, self.crop_size, self.crop_size, 3], tf.float32)],
        )
        self._tf = tf

    def _forward(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.floating]:
        x = crops.astype(np.float32) - BGR_MEANS  # crops are BGR already, the order this model wants
        return np.asarray(self._fn(self._tf.constant(x)).numpy(), dtype=np.float32)
