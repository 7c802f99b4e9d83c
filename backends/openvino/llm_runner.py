"""OpenVINO IR LLMs, two ways over the same IR:
- speed runs (all_logits=False) go through OpenVINO GenAI's LLMPipeline, and its own perf metrics
  give the time to first token and each later token's duration;
- quality runs and smoke tests need next-token logits at every position, which LLMPipeline does
  not return: they go through optimum-intel's OVModelForCausalLM on the same IR, with f32
  inference precision so the figures are the weights' own and not a bf16 execution's.
Both tokenize with the folder's Hugging Face tokenizer, as every other runner does."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

DEVICE = "CPU"


def ir_folder(path: Path) -> Path:
    return path.parent if path.is_file() else path


class OpenVINOLLMRunner:
    runtime = "OpenVINO CPU"

    def __init__(self, path: Path, threads: int, all_logits: bool) -> None:
        self.folder = ir_folder(path)
        self.threads = threads
        self._tok = None
        self.pipe = None
        self.model = None
        if all_logits:
            from optimum.intel import OVModelForCausalLM

            self.model = OVModelForCausalLM.from_pretrained(
                self.folder, compile=True, local_files_only=True,
                ov_config={"INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY",
                           "INFERENCE_PRECISION_HINT": "f32", "CACHE_DIR": ""})
        else:
            import openvino_genai as og

            # GenAI's default scheduler reuses the KV cache of a prompt it has seen (prefix caching):
            # repeated runs of one prompt would skip the prefill. The protocol measures prefill from an
            # empty cache, as llama-bench does, so the cache is off.
            scheduler = og.SchedulerConfig()
            scheduler.enable_prefix_caching = False
            self.pipe = og.LLMPipeline(str(self.folder), DEVICE, INFERENCE_NUM_THREADS=threads,
                                       PERFORMANCE_HINT="LATENCY", scheduler_config=scheduler)

    @property
    def tok(self):  # -> PreTrainedTokenizerBase
        """Loaded when first used: speed runs get token ids and need no transformers, whose import
        (with torch's) would count as the model's memory."""
        if self._tok is None:
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
        return self._tok

    def tokenize(self, text: str) -> list[int]:
        return list(self.tok(text)["input_ids"])

    def logits(self, ids: list[int]) -> np.ndarray:
        import torch

        assert self.model is not None, "opened for speed runs only"
        # No past_key_values: optimum resets the stateful model's KV cache before the call.
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long))
        return out.logits[0].float().numpy()

    def generate(self, prompt: str, max_tokens: int) -> str:
        import torch

        ids = self.tokenize(prompt)
        if self.model is not None:
            with torch.inference_mode():
                out = self.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                          max_new_tokens=max_tokens, do_sample=False)
            return self.tok.decode(out[0][len(ids):], skip_special_tokens=True)
        result = self._pipeline_generate(ids, max_tokens, stop_at_eos=True)
        return self.tok.decode(result.tokens[0], skip_special_tokens=True)

    def _pipeline_generate(self, ids: list[int], n: int, stop_at_eos: bool):  # -> EncodedResults
        import openvino as ov
        import openvino_genai as og

        config = og.GenerationConfig(max_new_tokens=n, do_sample=False)
        if not stop_at_eos:
            config.min_new_tokens, config.ignore_eos = n, True
        return self.pipe.generate(ov.Tensor(np.asarray([ids], dtype=np.int64)), config)

    def timed_generation(self, ids: list[int], n: int) -> tuple[float, list[float]]:
        """GenAI's own figures: time to first token, and the duration of each later token."""
        metrics = self._pipeline_generate(ids, n, stop_at_eos=False).perf_metrics
        ttft = metrics.get_ttft().mean / 1000  # ms
        steps = [d / 1e6 for d in list(metrics.raw_metrics.m_durations)]  # microseconds
        return ttft, steps

    def versions(self) -> dict[str, str]:
        return runtime_versions()

    def device(self) -> dict[str, str]:
        """The device the fingerprint records: GenAI compiles on the CPU plugin any Core reports."""
        import openvino as ov

        from backends.openvino.runtime_runner import device_description

        return device_description(ov.Core(), DEVICE)

    def close(self) -> None:
        self.pipe = None
        self.model = None


def load(path: Path, threads: int = 2, n_ctx: int = 1024, all_logits: bool = True) -> OpenVINOLLMRunner:
    return OpenVINOLLMRunner(path, threads, all_logits)


def runtime_versions() -> dict[str, str]:
    return {p: importlib.metadata.version(p) for p in ("openvino", "openvino-genai", "optimum-intel")}


def generate_once(folder: Path) -> str:
    """The first run every result gets before it may become a variant: LLMPipeline loads the IR
    with its tokenizer IRs and generates a few tokens. f32 execution, as the quality runs use: on a
    CPU with AVX512-BF16 the default bf16 execution of fp16 weights on one thread dies with SIGFPE
    while compiling (openvinotoolkit/openvino#33300, OpenVINO 2026.4)."""
    import openvino_genai as og

    pipe = og.LLMPipeline(str(folder), DEVICE, INFERENCE_NUM_THREADS=1, INFERENCE_PRECISION_HINT="f32")
    return pipe.generate("The capital of France is", og.GenerationConfig(max_new_tokens=8, do_sample=False))
