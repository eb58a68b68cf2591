"""Accuracy against threshold on LFW pairs: the plot in docs/operator-guide.md ("Tuning the threshold").

Run: .venv/bin/python bench/threshold_plot.py [--pairs FILE] [--images DIR] [--model NAME] [--out SVG]

It scores the pairs exactly as ``main.py evaluate lfw`` does (vision/lfw.py: the same pipeline,
central face, cosine similarity, the same summary, printed first as the same JSON object), then
sweeps the threshold from 0 to 1 and prints a table of accuracy, true-accept rate (same person
accepted) and false-accept rate (two strangers accepted), and draws those three curves as an SVG
by hand (no plotting library is installed), marking the model's calibrated threshold.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vision.native_logs import quiet_native_logs

quiet_native_logs()  # before anything imports TensorFlow

from vision.lfw import PairsError, parse_pairs, score_pairs, summarise  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FOLD1 = ROOT.parent / "shared" / "faces" / "lfw_pairs_fold1"

W, H = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 40, 56
COLOURS = {"accuracy": "#1f4e79", "true accept": "#2e9d5b", "false accept": "#c0392b"}


def sweep(
    scores: npt.NDArray[np.float64], labels: npt.NDArray[np.bool_], thresholds: npt.NDArray[np.float64]
) -> dict[str, list[float]]:
    """Accuracy, TAR and FAR at each threshold (a pair is accepted when its score >= threshold)."""
    acc, tar, far = [], [], []
    for t in thresholds:
        accepted = scores >= t
        acc.append(float(np.mean(accepted == labels)))
        tar.append(float(np.mean(accepted[labels])) if labels.any() else 0.0)
        far.append(float(np.mean(accepted[~labels])) if (~labels).any() else 0.0)
    return {"accuracy": acc, "true accept": tar, "false accept": far}


def svg_plot(
    thresholds: npt.NDArray[np.float64], curves: dict[str, list[float]], marks: dict[str, float], title: str
) -> str:
    """A line chart, y 0..1 against threshold 0..1, with vertical marks; plain SVG 1.1."""

    def x(t: float) -> float:
        return LEFT + t * (W - LEFT - RIGHT)

    def y(v: float) -> float:
        return H - BOTTOM - v * (H - TOP - BOTTOM)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="DejaVu Sans, Arial, sans-serif" font-size="13">',
        f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>',
    ]
    for i in range(11):
        v = i / 10
        out.append(f'<line x1="{x(0)}" y1="{y(v):.1f}" x2="{x(1)}" y2="{y(v):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x(0) - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
        out.append(f'<line x1="{x(v):.1f}" y1="{y(0)}" x2="{x(v):.1f}" y2="{y(0) + 5}" stroke="#333"/>')
        out.append(f'<text x="{x(v):.1f}" y="{y(0) + 20}" text-anchor="middle">{v:.1f}</text>')
    out.append(f'<rect x="{x(0)}" y="{y(1)}" width="{x(1) - x(0)}" height="{y(0) - y(1)}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{(x(0) + x(1)) / 2}" y="{H - 14}" text-anchor="middle">threshold (cosine similarity)</text>')
    out.append(f'<text transform="translate(16 {(y(0) + y(1)) / 2}) rotate(-90)" text-anchor="middle">rate</text>')
    for name, value in marks.items():
        out.append(
            f'<line x1="{x(value):.1f}" y1="{y(0)}" x2="{x(value):.1f}" y2="{y(1)}" stroke="#555" '
            'stroke-dasharray="5 4"/>'
        )
        out.append(f'<text x="{x(value) + 6:.1f}" y="{y(0.45):.1f}" fill="#555">{name} {value:.2f}</text>')
    for k, (name, values) in enumerate(curves.items()):
        points = " ".join(f"{x(float(t)):.1f},{y(v):.1f}" for t, v in zip(thresholds, values, strict=True))
        colour = COLOURS[name]
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        ly = y(0.72) + 20 * k  # the legend sits where no curve passes (above FAR, below accuracy)
        out.append(
            f'<line x1="{x(0.14)}" y1="{ly:.1f}" x2="{x(0.19)}" y2="{ly:.1f}" stroke="{colour}" stroke-width="3"/>'
        )
        out.append(f'<text x="{x(0.20)}" y="{ly + 4:.1f}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=FOLD1 / "pairs_fold1.txt")
    parser.add_argument("--images", type=Path, default=FOLD1 / "images")
    parser.add_argument("--model", default="facenet-512")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "threshold-lfw.svg")
    args = parser.parse_args()

    from vision.embedders import load_embedder
    from vision.pipeline import FacePipeline, read_image
    from vision.types import FloatArray

    try:
        pairs_file = parse_pairs(args.pairs)
    except (PairsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    embedder = load_embedder(args.model)
    pipeline = FacePipeline(embedder=embedder)
    pipeline.warm_up()
    start = time.perf_counter()

    def embed_images(paths: list[Path]) -> list[tuple[FloatArray, bool]]:
        images = []
        for path in paths:
            image = read_image(path)
            if image is None:
                raise PairsError(f"{path} is not a readable image")
            images.append(image)
        return [(obs.embedding, obs.detected) for obs in pipeline.central_faces(images)]

    scores, labels, no_face = score_pairs(pairs_file, args.images, embed_images)
    result = summarise(
        pairs_file, scores, labels, embedder.verification_threshold, no_face, time.perf_counter() - start, embedder.name
    )
    print(json.dumps(result.as_json()))

    thresholds = np.round(np.linspace(0.0, 1.0, 101), 2)
    curves = sweep(scores, labels, thresholds)
    print(f"\n{'threshold':>9} {'accuracy':>9} {'TAR':>7} {'FAR':>7}")
    for i in range(0, len(thresholds), 5):
        row = (curves["accuracy"][i], curves["true accept"][i], curves["false accept"][i])
        print(f"{thresholds[i]:>9.2f} {row[0]:>9.3f} {row[1]:>7.3f} {row[2]:>7.3f}")
    title = f"{embedder.name} on {len(scores)} LFW pairs ({args.pairs.name}): accept when score ≥ threshold"
    marks = {"calibrated (station default)": float(embedder.verification_threshold)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(svg_plot(thresholds, curves, marks, title), encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
