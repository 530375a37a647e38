"""Which number type the text model trains and samples in: "auto" decided by timings kept per machine."""

from __future__ import annotations

import os

import pytest

from shopgen.text import SAMPLING_PRECISIONS


def test_auto_precision_is_narrower_only_where_it_measured_faster(monkeypatch):
    from shopgen.errors import ShopgenError
    from shopgen.text import precision

    speed = precision.speedups()
    assert set(speed) == set(precision.SPEEDUPS) and speed["train_bf16"] > 0 and speed["sample_int8"] > 0
    monkeypatch.delenv("SHOPGEN_PRECISION", raising=False)
    assert precision.resolve("auto") == ("bf16" if speed["train_bf16"] >= precision.MIN_SPEEDUP else "fp32")
    fastest = max(("bf16", "int8"), key=lambda p: speed[f"sample_{p}"])
    expected = fastest if speed[f"sample_{fastest}"] >= precision.MIN_SPEEDUP else "fp32"
    assert precision.resolve("auto", SAMPLING_PRECISIONS) == expected
    assert precision.resolve("fp32") == "fp32" and precision.resolve("bf16") == "bf16"
    monkeypatch.setenv("SHOPGEN_PRECISION", "fp32")
    assert precision.resolve("auto") == "fp32"
    assert precision.resolve("bf16") == "bf16"  # an explicit choice beats the environment's default
    with pytest.raises(ShopgenError, match="precision 'fp16' is unknown"):
        precision.resolve("fp16")
    monkeypatch.setenv("SHOPGEN_PRECISION", "fp8")
    with pytest.raises(ShopgenError, match="SHOPGEN_PRECISION 'fp8' is unknown"):
        precision.resolve("auto")
    monkeypatch.setenv("SHOPGEN_PRECISION", "int8")  # the sampler's int8 matmuls; training has none
    assert precision.resolve("auto", SAMPLING_PRECISIONS) == "int8"
    with pytest.raises(ShopgenError, match="SHOPGEN_PRECISION 'int8' is unknown; use one of auto, fp32, bf16$"):
        precision.resolve("auto")


def test_auto_precision_is_timed_once_a_machine_and_kept(monkeypatch, tmp_path):
    """Every process reads the kept timings, so "auto" cannot pick another type under another load."""
    import json

    from shopgen.text import precision

    monkeypatch.setenv("SHOPGEN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SHOPGEN_PRECISION", raising=False)
    precision.speedups.cache_clear()
    try:
        measured = precision.speedups()
        (kept,) = tmp_path.glob("precision-*.json")
        assert {k: v for k, v in json.loads(kept.read_text()).items() if k in precision.SPEEDUPS} == measured
        cases = [  # what a later process reads -> what training's and the sampler's "auto" pick
            ({"train_bf16": 9.0, "sample_bf16": 3.0, "sample_int8": 2.0}, "bf16", "bf16"),
            ({"train_bf16": 0.1, "sample_bf16": 0.1, "sample_int8": 1.8}, "fp32", "int8"),
            ({"train_bf16": 2.0, "sample_bf16": 1.2, "sample_int8": 0.0}, "bf16", "fp32"),  # int8 gone from torch
        ]
        for speed, training, sampling in cases:
            kept.write_text(json.dumps(speed))
            precision.speedups.cache_clear()
            assert precision.resolve("auto") == training
            assert precision.resolve("auto", SAMPLING_PRECISIONS) == sampling
        kept.write_text("{not json")  # a broken file is timed again and replaced
        precision.speedups.cache_clear()
        assert precision.speedups()["train_bf16"] > 0 and json.loads(kept.read_text())["train_bf16"] > 0
    finally:
        precision.speedups.cache_clear()


def test_processes_starting_together_time_precision_once(tmp_path):
    """Two processes on an empty machine cache: the second waits for the first's timings and reads them (two
    timings would differ in their last digits)."""
    import json
    import subprocess
    import sys

    code = "import json; from shopgen.text import precision; print(json.dumps(precision.speedups()))"
    env = {**os.environ, "SHOPGEN_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    first, second = (json.loads(p.communicate(timeout=300)[0]) for p in procs)
    assert first == second and len(list(tmp_path.glob("precision-*.json"))) == 1


def test_instruction_caps_are_timed_apart_and_pick_as_that_cpu_would(tmp_path):
    """With torch's kernels capped at AVX2 (how an AVX-512 host stands in for an AVX2 one), bf16 is emulated
    and "auto" must not pick it; those timings go to their own file, beside the uncapped machine's."""
    import json
    import subprocess
    import sys

    code = ("import json; from shopgen.text import SAMPLING_PRECISIONS, precision; "
            "print(json.dumps([precision.resolve('auto'), precision.resolve('auto', SAMPLING_PRECISIONS)]))")
    caps = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}
    env = {k: v for k, v in os.environ.items() if k not in (*caps, "SHOPGEN_PRECISION")}
    env["SHOPGEN_CACHE_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env={**env, **caps}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    training, sampling = json.loads(out.stdout)
    assert training == "fp32" and sampling in ("fp32", "int8")
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=True)
    capped, uncapped = sorted(tmp_path.glob("precision-*.json"), key=lambda p: json.loads(p.read_text())["train_bf16"])
    assert json.loads(capped.read_text())["sample_bf16"] < 0.5  # emulated bf16: ~0.01x fp32 on a Zen 4
