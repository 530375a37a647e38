"""shopgen as a user installs it: the built wheel in a fresh virtual environment, `shopgen demo` run from an
empty folder, far from any checkout (the demo catalog and its schema must come from the package itself).

The fresh environment gets shopgen from the wheel alone. Its dependencies (torch, SDV, transformers...)
are the ones this checkout's environment already holds, made visible through a path file rather than
downloaded again: nothing here may fetch packages at test time, and what is tested is the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from conftest import ROOT


def run(*args: str | Path, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args[:3]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


def test_the_built_wheel_runs_the_demo_from_an_empty_folder(tmp_path):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, ROOT, cwd=tmp_path)
    wheel = next(dist.glob("shopgen-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("shopgen/demo/product_catalog.yaml", "shopgen/allowed.txt", "shopgen/text/kernels/draw.c",
                    "shopgen/text/kernels/fastmath.h"):
        assert shipped in names, f"{shipped} is not in the wheel"

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", wheel, cwd=tmp_path)
    fresh_site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).stdout.strip())
    (fresh_site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    empty = tmp_path / "elsewhere"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = run(python, "-c", "import shopgen; print(shopgen.__file__)", cwd=empty, env=env).stdout.strip()
    assert where.startswith(str(fresh_site)), f"shopgen imported from {where}, not from the wheel"
    demo = run(venv / "bin" / "shopgen", "demo", "-n", "50", "--tabular", "copula", "--text-epochs", "1",
               "--max-train-minutes", "0.25", "-q", cwd=empty, env=env)
    assert "PASS" in demo.stdout, demo.stdout
    out = empty / "demo_output"
    assert {p.name for p in out.iterdir()} >= {"products.csv", "schema.yaml", "model", "catalog.csv"}
    assert (out / "products.csv").read_bytes() == (ROOT / "sample_data" / "products.csv").read_bytes()
    assert len((out / "catalog.csv").read_text().splitlines()) == 51
