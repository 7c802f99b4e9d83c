"""Quality metrics against the source, defined once for every runtime."""

from __future__ import annotations

from typing import Any

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def causal_lm_quality(ids: list[int], windows: list[tuple[int, int]], variant_logits: list[np.ndarray],
                      reference_logits: list[np.ndarray] | None) -> dict[str, Any]:
    """Perplexity of the variant, and agreement, KL and max abs error against the reference.

    `*_logits[w]` holds the logits of window w (shape: window length x vocab). Position i of a
    window predicts token i + 1; the last position predicts nothing and is dropped.
    """
    nll, agree, kls, max_err, scored = 0.0, 0, 0.0, 0.0, 0
    ref_nll = 0.0
    for w, (start, end) in enumerate(windows):
        targets = np.array(ids[start + 1:end])
        lp = log_softmax(variant_logits[w][: end - start - 1])
        nll -= lp[np.arange(len(targets)), targets].sum()
        scored += len(targets)
        if reference_logits is not None:
            rp = log_softmax(reference_logits[w][: end - start - 1])
            ref_nll -= rp[np.arange(len(targets)), targets].sum()
            agree += int((lp.argmax(-1) == rp.argmax(-1)).sum())
            kls += float((np.exp(rp) * (rp - lp)).sum())
            max_err = max(max_err, float(np.abs(np.exp(lp) - np.exp(rp)).max()))
    out: dict[str, Any] = {"perplexity": float(np.exp(nll / scored)), "scored_positions": scored}
    if reference_logits is not None:
        ref_ppl = float(np.exp(ref_nll / scored))
        out.update(reference_perplexity=ref_ppl, top1_agreement=agree / scored, kl_mean=kls / scored,
                   max_abs_error=max_err, quality_retention=ref_ppl / out["perplexity"])
    return out


def summary(values: list[float]) -> dict[str, float]:
    arr = np.array(values, dtype=float)
    if arr.size == 0:
        return {}
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "p50": float(np.percentile(arr, 50)), "p90": float(np.percentile(arr, 90)),
            "min": float(arr.min()), "max": float(arr.max())}
