"""Entropy calibration's threshold search: ONNX Runtime's own against backends/onnxrt/entropy_search.py,
on the histograms of a real model, timed side by side in one run; prints both, their ratio, and
whether every threshold is the same.

    .venv/bin/python -m tests.bench.entropy_search MODEL.onnx TOKENIZER_FOLDER [--samples 32]

MODEL.onnx: an encoder's FP32 ONNX export from the catalog (e.g. all-MiniLM-L6-v2's onnx F32
variant, whose folder also holds its tokenizer). The histograms are collected once, as the
catalog's Entropy calibration collects them (2,048 bins, 128 quantized levels).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("tokenizer", type=Path)
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args()

    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    from backends.encoder_classifier_quality import eval_feeds
    from backends.onnxrt.entropy_search import entropy_threshold
    from backends.onnxrt.quantize import ENTROPY_BINS, STATIC_OP_TYPES, FeedReader

    batch = eval_feeds("feature-extraction", args.tokenizer, args.samples)
    feeds = [{k: v[i:i + 1] for k, v in batch.items()} for i in range(args.samples)]
    with tempfile.TemporaryDirectory() as tmp:
        calibrator = create_calibrator(args.model, list(STATIC_OP_TYPES),
                                       augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=CalibrationMethod.Entropy,
                                       extra_options={"num_bins": ENTROPY_BINS, "num_quantized_bins": 128})
        start = time.perf_counter()
        calibrator.collect_data(FeedReader(feeds))
        collect_s = time.perf_counter() - start
    collector = calibrator.collector
    histograms = collector.histogram_dict
    start = time.perf_counter()
    theirs = {name: collector.get_entropy_threshold(h, 128) for name, h in histograms.items()}
    theirs_s = time.perf_counter() - start
    start = time.perf_counter()
    ours = {name: entropy_threshold(h, 128) for name, h in histograms.items()}
    ours_s = time.perf_counter() - start
    same = sum(1 for name in histograms if tuple(ours[name]) == tuple(theirs[name]))
    print(f"{len(histograms)} tensors, {args.samples} samples; histograms collected in {collect_s:.1f} s")
    print(f"onnxruntime's search: {theirs_s:.1f} s ({theirs_s / len(histograms) * 1000:.0f} ms a tensor)")
    print(f"entropy_search:       {ours_s:.1f} s ({ours_s / len(histograms) * 1000:.0f} ms a tensor); "
          f"{theirs_s / ours_s:.0f}x faster")
    print(f"the same thresholds: {same} of {len(histograms)}")


if __name__ == "__main__":
    main()
