"""Quality metrics against the source, defined once for every runtime."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def nonfinite_share(outputs: np.ndarray) -> float:
    """The share of inputs (rows) whose output holds a NaN or an infinity."""
    return float((~np.isfinite(outputs.reshape(len(outputs), -1))).any(axis=1).mean()) if len(outputs) else 0.0


def nonfinite_sentence(variant: Any, reference: Any, metrics: dict[str, Any], scored: str) -> str:
    """Why a benchmark with NaN or infinite outputs failed, once its result is recorded as failed.
    `scored` names what was scored, e.g. "of the held-out inputs"."""
    if metrics["nonfinite_share"]:
        who = f"{variant.label} ({variant.id}) gives NaN or infinite outputs for {metrics['nonfinite_share']:.1%}"
    else:
        who = (f"its baseline {reference.label} ({reference.id}) gives NaN or infinite outputs for "
               f"{metrics['reference_nonfinite_share']:.1%}")
    return (f"Quality could not be measured: {who} {scored}, so the result is recorded as failed; "
            "weights with NaN or infinite values need to be re-imported or converted again.")


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
    if reference_logits is not None and not all(np.isfinite(x).all() for x in [*variant_logits, *reference_logits]):
        # An argmax over NaN is token 0 and NaN compares unequal: every figure would be made up.
        return {"nonfinite_share": nonfinite_share(np.concatenate(variant_logits)),
                "reference_nonfinite_share": nonfinite_share(np.concatenate(reference_logits)),
                "scored_positions": sum(e - s - 1 for s, e in windows)}
    nll, agree, kls, max_err, scored = 0.0, 0, 0.0, 0.0, 0
    ref_nll, kl_worst, kl_worst_at = 0.0, 0.0, -1
    for w, (start, end) in enumerate(windows):
        targets = np.array(ids[start + 1:end])
        lp = log_softmax(variant_logits[w][: end - start - 1])
        nll -= lp[np.arange(len(targets)), targets].sum()
        scored += len(targets)
        if reference_logits is not None:
            rp = log_softmax(reference_logits[w][: end - start - 1])
            ref_nll -= rp[np.arange(len(targets)), targets].sum()
            agree += int((lp.argmax(-1) == rp.argmax(-1)).sum())
            per_position = (np.exp(rp) * (rp - lp)).sum(axis=-1)
            kls += float(per_position.sum())
            # Kept so that a surprising mean can be traced to the position that caused it.
            if per_position.size and per_position.max() > kl_worst:
                kl_worst, kl_worst_at = float(per_position.max()), start + 1 + int(per_position.argmax())
            max_err = max(max_err, float(np.abs(np.exp(lp) - np.exp(rp)).max()))
    out: dict[str, Any] = {"perplexity": float(np.exp(nll / scored)), "scored_positions": scored}
    if reference_logits is not None:
        ref_ppl = float(np.exp(ref_nll / scored))
        out.update(reference_perplexity=ref_ppl, top1_agreement=agree / scored, kl_mean=kls / scored,
                   max_abs_error=max_err, quality_retention=ref_ppl / out["perplexity"],
                   kl_max=kl_worst, kl_max_token_index=kl_worst_at)
    return out


def llamacpp_perplexity(tokenize: Callable[[str], list[int]], logits: Callable[[list[int]], np.ndarray],
                        text: str, n_ctx: int = 512, max_chunks: int = 0) -> dict[str, Any]:
    """Perplexity computed the way llama-perplexity computes it, with the variant's own tokenizer.

    llama.cpp's tools/perplexity: the whole text is tokenized (adding BOS if the vocabulary wants
    one), cut into chunks of n_ctx tokens (a trailing partial chunk is dropped), the first token
    of each chunk is replaced by BOS when the vocabulary adds one, and only the second half of
    each chunk is scored: logits at positions n_ctx/2 .. n_ctx-2 predict the next token. Figures
    are therefore comparable with the perplexities published for llama.cpp quantizations.
    """
    ids = tokenize(text)
    probe = tokenize("")
    bos = probe[0] if probe else None  # a tokenizer that adds BOS returns it for empty text
    n_chunks = len(ids) // n_ctx
    if max_chunks:
        n_chunks = min(n_chunks, max_chunks)
    if n_chunks < 1:
        raise ValueError(f"the text has {len(ids)} tokens; llama.cpp's perplexity needs at least {n_ctx}")
    first = n_ctx // 2
    nll, scored = 0.0, 0
    for c in range(n_chunks):
        chunk = list(ids[c * n_ctx:(c + 1) * n_ctx])
        if bos is not None:
            chunk[0] = bos
        lp = log_softmax(np.asarray(logits(chunk))[first:n_ctx - 1])
        targets = np.array(chunk[first + 1:n_ctx])
        nll -= float(lp[np.arange(len(targets)), targets].sum())
        scored += len(targets)
    return {"llamacpp_perplexity": float(np.exp(nll / scored)), "llamacpp_ppl_chunks": n_chunks,
            "llamacpp_ppl_ctx": n_ctx, "llamacpp_ppl_scored": scored}


def steady_runs(runs: list[dict[str, Any]], max_other_share: float, min_kept: int = 3) -> tuple[list[dict], bool]:
    """The repetitions measured while other processes used at most max_other_share of the CPU.

    Returns (the runs to report, whether the machine was busy): when fewer than min_kept runs are
    quiet, all of them are reported and the result is marked busy rather than cut to a sliver."""
    quiet = [r for r in runs if r.get("others_cpu_share", 0.0) <= max_other_share]
    if len(quiet) >= min(min_kept, len(runs)):
        return quiet, len(quiet) < len(runs) / 2
    return runs, True


def cv(values: list[float]) -> float:
    """Coefficient of variation (sample std / mean); 0 for fewer than two values."""
    arr = np.array(values, dtype=float)
    if arr.size < 2 or arr.mean() == 0:
        return 0.0
    return float(arr.std(ddof=1) / arr.mean())


def summary(values: list[float]) -> dict[str, float]:
    arr = np.array(values, dtype=float)
    if arr.size == 0:
        return {}
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "p50": float(np.percentile(arr, 50)), "p90": float(np.percentile(arr, 90)),
            "min": float(arr.min()), "max": float(arr.max())}
