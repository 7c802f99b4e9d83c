"""The Entropy calibration's threshold search (backends/onnxrt/entropy_search.py) against ONNX
Runtime's own get_entropy_threshold, on histograms ORT's collector builds: the same ranges."""

from __future__ import annotations

import numpy as np
import pytest

from backends.onnxrt.entropy_search import entropy_threshold


def _collected(arrays: dict[str, list[np.ndarray]], num_bins: int):
    from onnxruntime.quantization.calibrate import HistogramCollector

    collector = HistogramCollector(method="entropy", symmetric=False, num_bins=num_bins, num_quantized_bins=128,
                                   percentile=99.999, scenario="same")
    for batch in zip(*arrays.values(), strict=True):
        collector.collect(dict(zip(arrays, [[b] for b in batch], strict=True)))
    return collector


@pytest.mark.parametrize("num_bins", [512, 777])  # 777: a histogram that 128 blocks do not divide evenly
def test_thresholds_equal_onnxruntimes_own(num_bins: int) -> None:
    rng = np.random.default_rng(0)
    outlier = rng.standard_normal((4, 4096)).astype(np.float32)
    outlier[:, :8] *= 60  # a few large channels, as in MiniLM's activations
    arrays = {
        "normal": [rng.standard_normal(4096).astype(np.float32) for _ in range(4)],
        "outliers": list(outlier),
        "relu": [np.maximum(rng.standard_normal(4096), 0).astype(np.float32) * (1 + k) for k in range(4)],
        "sparse": [np.where(rng.random(4096) < 0.02, rng.standard_normal(4096), 0).astype(np.float32)
                   for _ in range(4)],
    }
    collector = _collected(arrays, num_bins)
    for name, histogram in collector.histogram_dict.items():
        theirs = collector.get_entropy_threshold(histogram, 128)
        ours = entropy_threshold(histogram, 128)
        assert (ours[0], ours[1]) == (theirs[0], theirs[1]), name
        assert ours[0].dtype == theirs[0].dtype
    # the search is not trivial: the outlier tensor's range is clipped well inside its extremes
    low, high = entropy_threshold(collector.histogram_dict["outliers"], 128)
    assert high < 0.5 * collector.histogram_dict["outliers"][3]
