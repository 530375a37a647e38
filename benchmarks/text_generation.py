"""Generation speed of shopgen's sampler against Hugging Face `generate` and the machine's roofline.

In one run, on one trained text model and the same rows and sampling settings (temperature, top-k,
top-p, classifier-free guidance, stop at the end token or the field's cap), with guidance (the
default) and without:
- shopgen's batched sampler: tokens/s and products/s, in its default worker processes (one thread each,
  shopgen/text/generate/shards.py) and in one process on every thread; with its attention and draw in the native
  kernels (shopgen/text/kernels/) and, for the same rows, in torch ops (SHOPGEN_NATIVE=0's path);
- HF `model.generate`, field by field (marker, text, end; then the next field), at batch 1 and at
  the same batch size as ours;
- the roofline for this model: a measured fp32 matmul rate over 2 x parameters FLOPs per token;
  the square-matmul rate is the machine's ceiling (probed at the start and at the end: the higher counts,
  and a gap is flagged: anything else running halves it, and this VM's own rate moved 16 % in one run),
  and the rate of this model's own matmuls at the sampling batch size (M = batch, K and N = the layer
  widths; one thread, times the workers) is the ceiling a decoder step can reach.
`--precision auto` (the default) times what the sampler's default picks on this machine (text/precision.py).
With `--precision bf16` the sampler multiplies bf16 weights (SamplingConfig.precision), HF generate runs a
bf16 copy of the model (the same model and settings), and the bf16 roofline is reported beside the fp32 one;
with `--precision int8`, int8 weights (per output channel) and activations quantized per call, HF's copy
quantized the same way (torch's dynamic quantization of every projection), and an int8 roofline beside.
Writes benchmarks/results/text_generation.{json,md}.

    python benchmarks/text_generation.py [--catalog dmart] [--preset small] [--train-seconds 300]
    python benchmarks/text_generation.py --bundle models/dmart     # reuse a fitted bundle's text model
    python benchmarks/text_generation.py --text-model DIR          # or a TextModel.save_pretrained dir
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from shopgen.inference import infer_schema
from shopgen.presets import get_preset  # noqa: E402
from shopgen.text import SAMPLING_PRECISIONS, kernels  # noqa: E402
from shopgen.text.estimator import TextModel  # noqa: E402
from shopgen.text.generate.sampler import SamplingConfig  # noqa: E402
from shopgen.text.generate.shards import plan  # noqa: E402
from shopgen.text.linear import prepare, project  # noqa: E402
from shopgen.text.machine import isa_limits  # noqa: E402
from shopgen.text.precision import resolve  # noqa: E402
from shopgen.text.prompt import END, PAD  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _matmul(m: int, k: int, n: int, precision: str) -> Callable[[], torch.Tensor]:
    """`x @ w + b` of shape (m, k) x (k, n) as the sampler runs it in `precision` (int8: torch's dynamic
    quantized linear, activations quantized per call, as shopgen/text/decoder.py does)."""
    if precision == "int8":  # the decoder's own packing and call
        projection, x = prepare(torch.randn(k, n), torch.zeros(n), "int8"), torch.randn(m, k)
        return lambda: project(x, projection)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    x, w, b = (torch.randn(*shape, dtype=dtype) for shape in ((m, k), (k, n), (n,)))
    return lambda: torch.addmm(b, x, w)


def matmul_rate(size: int = 1024, repeats: int = 20, precision: str = "fp32") -> float:
    """Best FLOP/s of a square matmul over 3 trials: the compute ceiling a model step can reach."""
    run = _matmul(size, size, size, precision)
    best = 0.0
    for _ in range(3):
        run()
        t0 = time.perf_counter()
        for _ in range(repeats):
            run()
        best = max(best, repeats * 2 * size**3 / (time.perf_counter() - t0))
    return best


def shape_rate(model: torch.nn.Module, batch: int, workers: int, repeats: int = 20,
               precision: str = "fp32") -> float:
    """FLOP/s of the model's own weight matmuls at M = batch: what one decoder step can reach at best.
    Each worker runs one thread: one thread's rate times the workers (an upper bound: cores share memory)."""
    threads = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(1)
    try:
        return workers * _shapes_rate(model, batch, repeats, precision)
    finally:
        torch.set_num_threads(threads)


def _shapes_rate(model: torch.nn.Module, batch: int, repeats: int, precision: str) -> float:
    shapes = [tuple(m.weight.shape) if type(m).__name__ == "Conv1D" else tuple(m.weight.shape[::-1])
              for m in model.modules() if type(m).__name__ in ("Conv1D", "Linear")]
    flops, seconds = 0.0, 0.0
    for k, n in shapes:
        run = _matmul(batch, k, n, precision)
        run()
        t0 = time.perf_counter()
        for _ in range(repeats):
            run()
        seconds += time.perf_counter() - t0
        flops += repeats * 2 * batch * k * n
    return flops / seconds


def cpu() -> str:
    """The CPU's name and widest vector ISA: the roofline, and what reaches it, depend on both."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "unknown")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    caps = f", kernels capped by {isa_limits(' ')}" if isa_limits() else ""
    return f"{name}, {isa}{', AMX' if 'amx_tile' in flags else ''}{caps}"


def guided(cfg: SamplingConfig, field: int) -> int:
    """How many of this text field's first tokens guidance steers (each costs two model rows)."""
    if cfg.guidance <= 0:
        return 0
    if cfg.guided_fields is None or field < cfg.guided_fields:
        return 1 << 30
    return cfg.guided_tokens if field == cfg.guided_fields else 0


def int8_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of a GPT-2 whose projections (Conv1D, which torch's quantizer skips, made Linear) and head are
    dynamically quantized: int8 weights per output channel, as the sampler's."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    lm = copy.deepcopy(model)
    for parent in list(lm.modules()):
        for name, child in list(parent.named_children()):
            if type(child).__name__ == "Conv1D":
                linear = torch.nn.Linear(*child.weight.shape)
                linear.weight.data, linear.bias.data = child.weight.data.t().contiguous(), child.bias.data
                setattr(parent, name, linear)
    return quantize_dynamic(lm, {torch.nn.Linear: per_channel_dynamic_qconfig})


def ours(model: TextModel, prompts: list[list[int]], cfg: SamplingConfig, seed: int, native_kernels: bool = True) -> dict:
    os.environ["SHOPGEN_NATIVE"] = "1" if native_kernels else "0"
    kernels.kernel.cache_clear()
    if native_kernels and kernels.kernel() is None:
        sys.exit("the native kernels did not build here (is there a C compiler?)")
    t0 = time.perf_counter()
    out = model.generate_tokens(prompts, torch.Generator().manual_seed(seed), cfg)
    seconds = time.perf_counter() - t0
    tokens = sum(len(f) + 1 for row in out for f in row)  # text tokens plus each field's end token
    model_rows = sum(len(f) + 1 + min(len(f) + 1, guided(cfg, i)) for row in out for i, f in enumerate(row))
    return {"rows": len(prompts), "tokens": tokens, "seconds": round(seconds, 3),
            "tokens_per_s": round(tokens / seconds), "products_per_s": round(len(prompts) / seconds, 2),
            "model_rows_per_token": round(model_rows / tokens, 3)}


@torch.no_grad()
def hf(model: TextModel, prompts: list[list[int]], cfg: SamplingConfig, batch: int, seed: int,
       lm: torch.nn.Module | None = None) -> dict:
    """What a user of `generate` writes: per field, generate until the end token, append the next marker.

    In the guided fields, HF's own classifier-free guidance (`guidance_scale` = 1 + w, the empty prompt plus
    the text so far as `negative_prompt_ids`) runs the unconditional rows in a second model call per step;
    a field guided over its first tokens only (`guided_tokens`) is generated guided up to them, then its
    unfinished rows go on unguided. `lm`: the network to run (default: the model's own; a bf16 or int8 copy
    for `--precision`). The sampler's ban list goes in as `suppress_tokens`."""
    torch.manual_seed(seed)
    lm, end, pad = lm or model.model_.to_hf(), model.token_id(END), model.token_id(PAD)
    banned = list(model.banned_ids)  # the sampler's: padding, field markers, control characters
    empty = model.encode([model.format_.empty_prompt()])[0]
    fields, tokens = model.field_specs(), 0

    def left_padded(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(map(len, seqs))
        return (torch.tensor([[pad] * (width - len(s)) + s for s in seqs]),
                torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs]))

    t0 = time.perf_counter()
    for start in range(0, len(prompts), batch):
        seqs = [p + [fields[0].marker_id] for p in prompts[start:start + batch]]
        negatives = [empty + [fields[0].marker_id] for _ in seqs]
        for f, field in enumerate(fields):
            steered = min(guided(cfg, f), field.max_tokens)
            texts: list[list[int]] = [[] for _ in seqs]
            unfinished = list(range(len(seqs)))
            for budget, guide in ((steered, True), (field.max_tokens - steered, False)):
                if budget <= 0 or not unfinished:
                    continue
                ids, mask = left_padded([seqs[r] + texts[r] for r in unfinished])
                guidance = {}
                if guide:
                    neg_ids, neg_mask = left_padded([negatives[r] + texts[r] for r in unfinished])
                    guidance = {"guidance_scale": 1 + cfg.guidance, "negative_prompt_ids": neg_ids,
                                "negative_prompt_attention_mask": neg_mask}
                out = lm.generate(
                    input_ids=ids, attention_mask=mask, do_sample=True, temperature=cfg.temperature,
                    top_k=cfg.top_k, top_p=cfg.top_p, max_new_tokens=budget, eos_token_id=end,
                    pad_token_id=pad, suppress_tokens=banned, **guidance,
                )[:, ids.shape[1]:].tolist()
                for r, new in zip(unfinished, out):
                    texts[r] += new[: new.index(end)] if end in new else new
                unfinished = [r for r, new in zip(unfinished, out) if end not in new]
            nxt = [fields[f + 1].marker_id] if f + 1 < len(fields) else []
            for r, text in enumerate(texts):
                tokens += len(text) + 1
                seqs[r] = seqs[r] + text + [end] + nxt
                negatives[r] = negatives[r] + text + [end] + nxt
    seconds = time.perf_counter() - t0
    return {"rows": len(prompts), "batch": batch, "tokens": tokens, "seconds": round(seconds, 3),
            "tokens_per_s": round(tokens / seconds), "products_per_s": round(len(prompts) / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default="dmart")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--train-seconds", type=float, default=300)
    parser.add_argument("--bundle", help="use this bundle's text model instead of training one")
    parser.add_argument("--text-model", help="use this TextModel.save_pretrained directory")
    parser.add_argument("--rows", type=int, default=2048, help="rows for shopgen (drawn from the catalog with replacement)")
    parser.add_argument("--batch-size", type=int, help="rows per step (default: the sampler's, by guidance)")
    parser.add_argument("--guidance", type=float, default=SamplingConfig().guidance)
    parser.add_argument("--sweep", type=int, nargs="*", default=[64, 128, 256], help="other batch sizes to time shopgen at")
    parser.add_argument("--hf-rows", type=int, default=256, help="rows for HF generate at the same batch size")
    parser.add_argument("--hf1-rows", type=int, default=32, help="rows for HF generate at batch 1 (it is slow)")
    parser.add_argument("--long-rows", type=int, default=8192,
                        help="rows for shopgen's long run, where the last rows' tail weighs little (0: skip it)")
    parser.add_argument("--precision", default="auto", choices=SAMPLING_PRECISIONS,
                        help="the number type of the weight matmuls, for shopgen's sampler and HF generate alike "
                             "(auto: what the sampler picks on this machine by default)")
    parser.add_argument("--name", default="text_generation",
                        help="results file stem under benchmarks/results/ (keep one per machine class)")
    args = parser.parse_args()
    asked, args.precision = args.precision, resolve(args.precision, SAMPLING_PRECISIONS)

    path = ROOT.parent / "shared" / "data" / args.catalog / "products.csv"
    if not path.is_file():
        sys.exit(f"{path} not found")
    df = pd.read_csv(path)
    preset = get_preset(args.preset)
    if args.bundle or args.text_model:
        directory = Path(args.text_model) if args.text_model else Path(args.bundle) / "text"
        model = TextModel.from_pretrained(directory, preset.text)
        source = f"text model {directory}"
    else:
        schema = infer_schema(df, name=args.catalog).schema
        model = TextModel(preset.text, max_seconds=args.train_seconds).fit(schema, schema.check_frame(df))
        source = f"{args.preset} preset trained {args.train_seconds:.0f}s on {args.catalog}"
    rows = df.sample(args.rows, random_state=0, replace=True)
    prompts = model.encode(model.format_.prompts(rows))
    long_prompts = model.encode(model.format_.prompts(df.sample(args.long_rows, random_state=1, replace=True)))
    cfg = SamplingConfig(batch_size=args.batch_size, guidance=args.guidance, precision=args.precision)  # guided
    if args.precision == "int8":
        hf_lm = int8_copy(model.model_.to_hf())
    else:
        hf_lm = model.model_.to_hf().to(torch.bfloat16 if args.precision == "bf16" else torch.float32)
    params = sum(p.numel() for n, p in model.model_.named_parameters() if "wpe" not in n)
    rate_start = matmul_rate()
    workers = plan(len(prompts), cfg.workers)
    model_rows = cfg.rows_per_step * (2 if guided(cfg, len(model.field_specs()) - 1) else 1)  # rows most steps run
    shapes = shape_rate(model.model_.to_hf(), model_rows, workers, precision=args.precision)  # its Linear head too
    low = args.precision  # a precision below fp32 gets its own roofline beside fp32's
    rate_low = matmul_rate(precision=low) if low != "fp32" else None

    def measure(c: SamplingConfig) -> dict:
        return {"sampling": vars(c), "batch": c.rows_per_step, "workers": workers,
                "shopgen": ours(model, prompts, c, seed=0),
                "shopgen_one_process": ours(model, prompts, replace(c, workers=1), seed=0),
                "shopgen_torch_ops": ours(model, prompts, c, seed=0, native_kernels=False),
                "hf_same_batch": hf(model, prompts[: args.hf_rows], c, c.rows_per_step, seed=0, lm=hf_lm),
                "hf_batch_1": hf(model, prompts[: args.hf1_rows], c, 1, seed=0, lm=hf_lm),
                **({"shopgen_long": ours(model, long_prompts, c, seed=0)} if long_prompts else {})}

    settings = [cfg] + ([replace(cfg, guidance=0.0)] if cfg.guidance > 0 else [])
    runs = [measure(c) for c in settings]
    sweep = {b: ours(model, prompts, replace(cfg, batch_size=b), seed=0) for b in args.sweep if b != cfg.rows_per_step}
    rate_end = matmul_rate()
    rate = max(rate_start, rate_end)
    roofline = rate / (2 * params)
    for run in runs:
        s = run["shopgen"]["tokens_per_s"]
        rows = run["shopgen"]["model_rows_per_token"]
        run["ratios"] = {
            "of_roofline": round(s / roofline, 3),
            "of_roofline_counting_model_rows": round(rows * s / roofline, 3),
            "of_model_shape_roofline": round(rows * s * 2 * params / shapes, 3),
            **({f"of_{low}_roofline": round(s * 2 * params / rate_low, 3)} if rate_low else {}),
            "vs_hf_batch_1": round(s / run["hf_batch_1"]["tokens_per_s"], 1),
            "vs_hf_same_batch": round(s / run["hf_same_batch"]["tokens_per_s"], 2),
            "native_vs_torch_ops": round(s / run["shopgen_torch_ops"]["tokens_per_s"], 2),
            "workers_vs_one_process": round(s / run["shopgen_one_process"]["tokens_per_s"], 2),
        }
        if "shopgen_long" in run:
            long = run["shopgen_long"]
            run["ratios"]["long_of_roofline"] = round(long["tokens_per_s"] / roofline, 3)
            run["ratios"]["long_of_roofline_counting_model_rows"] = round(
                long["model_rows_per_token"] * long["tokens_per_s"] / roofline, 3)
    result = {
        "model": source, "cpu": cpu(), "parameters": params, "threads": torch.get_num_threads(), "workers": workers,
        "matmul_gflops": round(rate / 1e9, 1),
        "matmul_gflops_probes": [round(rate_start / 1e9, 1), round(rate_end / 1e9, 1)],
        "roofline_tokens_per_s": round(roofline), "precision": args.precision, "precision_asked": asked,
        **({f"{low}_matmul_gflops": round(rate_low / 1e9, 1),
            f"{low}_roofline_tokens_per_s": round(rate_low / (2 * params))} if rate_low else {}),
        "model_shape_gflops": round(shapes / 1e9, 1), "model_shape_roofline_tokens_per_s": round(shapes / (2 * params)),
        "runs": runs, "shopgen_batch_sweep": sweep,
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    lines = [
        f"# Text generation speed ({time.strftime('%Y-%m-%d')}, {torch.get_num_threads()} CPU threads)", "",
        f"CPU: {result['cpu']}.", "",
        f"Model: {source}, {params:,} parameters (position embeddings excluded). Sampling: {vars(cfg)}; "
        "HF generate gets the same settings (with guidance: its own classifier-free guidance, `guidance_scale` = "
        "1 + guidance and the empty prompt as `negative_prompt_ids`).", "",
        "| sampler | guidance | rows | tokens/s | products/s |", "|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        g, batch = run["sampling"]["guidance"], run["batch"]
        for key, label in (("shopgen", f"shopgen, batch {batch}, {workers} workers"),
                           ("shopgen_one_process", f"shopgen, batch {batch}, one process of {result['threads']} threads"),
                           ("shopgen_torch_ops", f"shopgen, batch {batch}, {workers} workers, torch ops"),
                           ("shopgen_long", f"shopgen, batch {batch}, {workers} workers, long run"),
                           ("hf_same_batch", f"HF generate, batch {batch}"), ("hf_batch_1", "HF generate, batch 1")):
            if key not in run:
                continue
            r = run[key]
            lines.append(f"| {label} | {g} | {r['rows']} | {r['tokens_per_s']:,} | {r['products_per_s']} |")
    for b, r in result["shopgen_batch_sweep"].items():
        lines.append(f"| shopgen, batch {b}, {workers} workers | {cfg.guidance} | {r['rows']} | {r['tokens_per_s']:,} | {r['products_per_s']} |")
    probes = result["matmul_gflops_probes"]
    lines += [
        "", f"Roofline: {result['matmul_gflops']} GFLOP/s fp32 matmul (probes at start and end: {probes[0]}, "
        f"{probes[1]}; the higher counts) / (2 x {params:,}) = {result['roofline_tokens_per_s']:,} tokens/s. The "
        f"model's own matmuls at {model_rows} rows run at {result['model_shape_gflops']} GFLOP/s in {args.precision} "
        f"({workers} x one thread): {result['model_shape_roofline_tokens_per_s']:,} tokens/s is what decoder steps "
        "could reach with nothing else in them.", "",
    ]
    if rate_low:
        lines += [f"Matmuls in {low} (`--precision {asked}`: shopgen's weight matmuls and HF's whole model): the square "
                  f"{low} matmul runs at {result[f'{low}_matmul_gflops']} GFLOP/s, a {low} roofline of "
                  f"{result[f'{low}_roofline_tokens_per_s']:,} tokens/s; ratios to the roofline below are to the fp32 "
                  f"one, as issue 3 defines it, and to the {low} one.", ""]
    if min(probes) < 0.85 * max(probes):
        lines += ["**The two probes differ by more than 15 %: the machine's speed changed during the run (another "
                  "process, or the VM's host), and the ratios to the roofline are uncertain by as much.**", ""]
    for run in result["runs"]:
        ratios = run["ratios"]
        lines.append(
            f"- guidance {run['sampling']['guidance']}: **{ratios['of_roofline']:.0%} of the roofline** "
            + (f"({ratios[f'of_{low}_roofline']:.0%} of the {low} one) " if f"of_{low}_roofline" in ratios else "") +
            f"({ratios['of_roofline_counting_model_rows']:.0%} counting each model row a guided token costs; "
            f"{ratios['of_model_shape_roofline']:.0%} of the model-shape ceiling), **{ratios['vs_hf_batch_1']}x** HF "
            f"generate at batch 1 and **{ratios['vs_hf_same_batch']}x** HF generate at the same batch size; with "
            f"the native kernels (attention, draw) it runs {ratios['native_vs_torch_ops']}x its torch-op path; "
            f"{workers} worker processes run {ratios['workers_vs_one_process']}x one process on all threads."
            + (f" The long run ({run['shopgen_long']['rows']:,} rows, where the last long descriptions' tail "
               f"weighs less): **{ratios['long_of_roofline']:.0%} of the roofline** "
               f"({ratios['long_of_roofline_counting_model_rows']:.0%} counting model rows)."
               if "shopgen_long" in run else "")
        )
    lines += ["", f"Re-run: `.venv/bin/python benchmarks/text_generation.py --text-model DIR --precision {asked} --name {args.name}` "
              "(a model `benchmarks/text_presets.py --save DIR` kept)."]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
