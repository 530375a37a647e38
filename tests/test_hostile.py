"""Hostile and broken inputs, as a user or an attacker hands them to the `shopgen` command.

Every case: exit 2 (never 3, the code of a bug), one line on stderr, and nothing written or changed.
Bundles: a payload in the pickle does not run even with a re-hashed manifest; signing; `--out` onto
someone's folder. Killed processes: no orphan workers, no lock left for the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, SAMPLE_CSV, SAMPLE_SCHEMA
from test_cli import one_line_error, shopgen
from test_db import db  # noqa: F401 (the sqlite / postgresql / mysql fixture)


class Payload:
    """Unpickling this creates a file: the proof of whether foreign code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def rehash(bundle: Path) -> None:
    """What an attacker with write access does after replacing a file: make the manifest agree."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"] = {name: hashlib.sha256((bundle / name).read_bytes()).hexdigest() for name in manifest["files"]}
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def bad(tmp_path_factory, sample_df, tiny_synth) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    schema = SAMPLE_SCHEMA.read_text()
    nan_min = schema.replace("{type: numeric, min: 0.99, max: 2500, decimals: 2}", "{type: numeric, min: .nan, decimals: 2}", 1)
    assert nan_min != schema
    (d / "nan_min.yaml").write_text(nan_min)
    (d / "latin1.yaml").write_bytes("name: caf\xe9\ncolumns: {a: {type: numeric}}\n".encode("latin-1"))
    (d / "two_keys.yaml").write_text("name: x\nprimary_key: [a, b]\ncolumns: {a: {type: id}, b: {type: id}}\n")
    lol = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    (d / "bomb.yaml").write_text("name: x\ncolumns:\n  c:\n    type: categorical\n    values: *i\n" + lol)
    (d / "big.yaml").write_text("name: x\n" + "# padding\n" * 1_200_000)
    (d / "list_type.yaml").write_text("name: x\ncolumns: {a: {type: [numeric]}}\n")
    (d / "nested_values.yaml").write_text("name: x\ncolumns: {a: {type: categorical, values: [[1, 2]]}}\n")
    (d / "maybe_null.yaml").write_text("name: x\ncolumns: {a: {type: numeric, nullable: maybe}}\n")
    (d / "map_rule.yaml").write_text("name: x\ncolumns: {a: {type: numeric}, b: {type: numeric}}\nrules: [{a: b}]\n")
    (d / "pipeline_alias.yaml").write_text("vars: &v {rows: 5}\nsteps:\n  - sample: *v\n")
    (d / "pipeline_latin1.yaml").write_bytes("steps:\n  - sample: {bundle: caf\xe9}\n".encode("latin-1"))
    nulls = sample_df.copy()
    nulls.loc[5, "price"] = None
    nulls.to_csv(d / "null_price.csv", index=False)
    low = sample_df.copy()
    low.loc[7, "price"] = -3.0
    low.to_csv(d / "negative_price.csv", index=False)
    twice = sample_df.copy()
    twice.loc[9, "sku"] = twice.loc[8, "sku"]
    twice.to_csv(d / "repeated_sku.csv", index=False)
    header = SAMPLE_CSV.read_text().splitlines()
    (d / "dup_header.csv").write_text("\n".join([header[0] + ",price"] + [r + ",1" for r in header[1:50]]) + "\n")
    sample_df.head(3).to_csv(d / "three_rows.csv", index=False)
    (d / "latin1.csv").write_bytes("name,price\ncaf\xe9,1\n".encode("latin-1") * 1)
    victim = d / "victim"
    victim.mkdir()
    (victim / "important.txt").write_text("do not delete")
    (d / "a_file").write_text("not a folder")
    (d / "taken.csv").write_text("sku\n1\n")
    (d / "folder.csv").mkdir()
    bundle = d / "bundle"
    shutil.copytree(tiny_synth[1], bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    garbled = d / "garbled_manifest"
    shutil.copytree(bundle, garbled)
    (garbled / "manifest.json").write_text("{not json")
    listed = d / "list_manifest"
    shutil.copytree(bundle, listed)
    (listed / "manifest.json").write_text(json.dumps({**manifest, "files": ["schema.yaml"]}))
    return d


S = str(SAMPLE_SCHEMA)
C = str(SAMPLE_CSV)
CASES = [
    # bundles and outputs that are not ours
    (["fit", C, "--schema", S, "--out", "{d}/victim"], ["not a shopgen bundle"]),
    (["fit", C, "--schema", S, "--out", "{d}/a_file"], ["not a folder"]),
    (["sample", "{d}/a_file", "-n", "5", "-o", "{d}/o.csv"], ["does not exist"]),
    (["sample", "{d}/garbled_manifest", "-n", "5", "-o", "{d}/o.csv"], ["not a shopgen bundle"]),
    (["sample", "{d}/list_manifest", "-n", "5", "-o", "{d}/o.csv"], ["lists no files"]),
    (["sample", "{d}/victim", "-n", "5", "-o", "{d}/o.csv"], ["not a shopgen bundle"]),
    # schemas
    (["fit", C, "--schema", "{d}/nan_min.yaml", "--out", "{d}/m"], ["min=nan", "finite number"]),
    (["fit", C, "--schema", "{d}/latin1.yaml", "--out", "{d}/m"], ["not UTF-8"]),
    (["fit", C, "--schema", "{d}/two_keys.yaml", "--out", "{d}/m"], ["primary_key", "single id column"]),
    (["fit", C, "--schema", "{d}/bomb.yaml", "--out", "{d}/m"], ["not allowed"]),
    (["schema", "ddl", "{d}/bomb.yaml"], ["not allowed"]),
    (["validate", C, "--schema", "{d}/bomb.yaml"], ["not allowed"]),
    (["schema", "ddl", "{d}/big.yaml"], ["bytes, over the"]),
    (["schema", "ddl", "{d}/list_type.yaml"], ["type must be a single value"]),
    (["schema", "ddl", "{d}/nested_values.yaml"], ["list of plain values"]),
    (["schema", "ddl", "{d}/maybe_null.yaml"], ["true or false"]),
    (["schema", "ddl", "{d}/map_rule.yaml"], ["'rules' must be a list"]),
    (["validate", C, "--schema", "{d}/latin1.yaml"], ["not UTF-8"]),
    # catalogs that break their schema, or cannot be learned
    (["fit", "{d}/null_price.csv", "--schema", S, "--out", "{d}/m"], ["'price' is empty in 1 row(s), first row 5"]),
    (["fit", "{d}/negative_price.csv", "--schema", S, "--out", "{d}/m"], ["'price' is below min", "row 7"]),
    (["fit", "{d}/repeated_sku.csv", "--schema", S, "--out", "{d}/m"], ["primary_key 'sku' repeats", "row 9"]),
    (["fit", "{d}/dup_header.csv", "--schema", S, "--out", "{d}/m"], ["['price'] more than once"]),
    (["schema", "infer", "{d}/dup_header.csv"], ["more than once"]),
    (["fit", "{d}/three_rows.csv", "--schema", S, "--out", "{d}/m"], ["3 rows", "at least"]),
    (["fit", "{d}/latin1.csv", "--out", "{d}/m"], ["cannot read"]),
    # row counts, seeds and outputs
    (["sample", "{d}/bundle", "-n", "1000000000000", "-o", "{d}/o.csv"], ["above the 10,000,000"]),
    (["sample", "{d}/bundle", "-n", "1e12", "-o", "{d}/o.csv"], ["'-n'"]),
    (["sample", "{d}/bundle", "-n", "5", "-o", "{d}/o.csv", "--seed", "-1"], ["--seed"]),
    (["sample", "{d}/bundle", "-n", "5", "-o", "{d}/folder.csv"], ["is a folder"]),
    (["sample", "{d}/bundle", "-n", "5", "-o", "{d}/taken.csv", "--if-exists", "fail"], ["exists", "--if-exists replace"]),
    (["sample", "{d}/bundle", "-n", "5", "-o", "{d}/o.csv", "--if-exists", "append"], ["does not apply to a file"]),
    (["sample", "{d}/bundle", "-n", "0", "-o", "{d}/o.csv"], ["'-n'"]),
    (["seed", "{d}/bundle", "--db", "sqlite:///{d}/x.db", "--table", "t", "-n", "1000000000"], ["above the 100,000,000"]),
    (["seed", "{d}/bundle", "--db", "sqlite:///{d}/x.db", "--table", "t", "-n", "5", "--seed", "-2"], ["--seed"]),
    (["seed", "{d}/bundle", "--db", "oracle://x@y/z", "--table", "t", "-n", "5"], ["unknown scheme"]),
    (["seed", "{d}/bundle", "--db", "sqlite:///{d}/x.db", "--table", "x" * 100, "-n", "5"], ["longer than"]),
    (["sample", "{d}/bundle", "-n", "5", "-o", "{d}/o.csv", "--where", "nope=1"], ["nope"]),
    (["sample", "{d}/bundle", "-n", "5", "-o", "{d}/o.csv", "--where", "price"], ["--where"]),
    # pipelines
    (["run", "{d}/pipeline_alias.yaml"], ["not allowed"]),
    (["run", "{d}/pipeline_latin1.yaml"], ["not UTF-8"]),
    (["fit", C, "--out", "{d}/m", "--preset", "huge"], ["unknown preset 'huge'"]),
]


def _state(d: Path) -> dict[str, tuple[int, float]]:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime) for p in sorted(d.rglob("*"))}


@pytest.fixture(scope="module")
def matrix(bad) -> dict:
    """Every case run once, four processes at a time (none may write, so they cannot disturb each other),
    with the folder's state before and after."""
    before = _state(bad)
    with ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(lambda case: shopgen(*[a.format(d=bad) for a in case[0]]), CASES))
    return {"before": before, "after": _state(bad), "procs": procs}


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{i}-{a[0]}" for i, (a, _) in enumerate(CASES)])
def test_bad_input_is_one_line_and_exit_2(matrix, case):
    one_line_error(matrix["procs"][case], 2, *CASES[case][1])


def test_bad_input_writes_or_changes_nothing(matrix):
    assert matrix["after"] == matrix["before"]


def test_the_matrix_is_wide():
    assert len(CASES) >= 40


# ---- bundles that would run code --------------------------------------------------------------------
def test_a_payload_in_a_rehashed_bundle_is_refused_by_name_and_never_runs(tiny_synth, tmp_path):
    bundle = tmp_path / "evil"
    shutil.copytree(tiny_synth[1], bundle)
    marker = tmp_path / "ran"
    (bundle / "tabular.pkl").write_bytes(pickle.dumps(Payload(str(marker))))
    rehash(bundle)
    proc = shopgen("sample", bundle, "-n", "5", "-o", tmp_path / "out.csv")
    one_line_error(proc, 2, "posix.system", "refusing to load it")
    assert not marker.exists()
    assert not (tmp_path / "out.csv").exists()


def test_allowed_names_cannot_be_chained_into_a_call(tiny_synth, tmp_path):
    """A pickle that reaches `getattr` or a nested unpickler through allowed classes is refused too."""
    from shopgen.errors import BundleError
    from shopgen.safepickle import allowed, load

    names = allowed()
    for forbidden in [("builtins", "getattr"), ("builtins", "eval"), ("functools", "partial"),
                      ("torch.storage", "_load_from_bytes"), ("torch", "load"), ("pickle", "loads"),
                      ("numpy", "load"), ("pandas", "read_pickle"), ("os", "system")]:
        assert forbidden not in names
    evil = tmp_path / "t.pkl"
    evil.write_bytes(b"\x80\x04cbuiltins\ngetattr\n.")
    with pytest.raises(BundleError, match="builtins.getattr"):
        load(evil, tmp_path / "none.safetensors")


def test_a_bundle_round_trips_through_the_safe_loader(tiny_synth, tmp_path):
    from shopgen.synthesizer import CatalogSynthesizer

    synth, path = tiny_synth
    loaded = CatalogSynthesizer.load(path, show_progress=False)
    a = synth.tabular_model_.sample(50, seed=3)
    b = loaded.tabular_model_.sample(50, seed=3)
    pd.testing.assert_frame_equal(a, b)


def test_signed_bundles_load_only_with_their_key(tiny_synth, tmp_path, monkeypatch):
    from shopgen.errors import BundleError
    from shopgen.synthesizer import CatalogSynthesizer

    synth, unsigned = tiny_synth
    monkeypatch.setenv("SHOPGEN_BUNDLE_KEY", "team secret")
    signed = synth.save(tmp_path / "signed")
    assert CatalogSynthesizer.load(signed, show_progress=False).n_training_rows_ == synth.n_training_rows_
    with pytest.raises(BundleError, match="is not signed"):
        CatalogSynthesizer.load(unsigned)
    forged = tmp_path / "forged"
    shutil.copytree(signed, forged)
    (forged / "schema.yaml").write_text((forged / "schema.yaml").read_text() + "\n")
    rehash(forged)
    with pytest.raises(BundleError, match="signature that does not match"):
        CatalogSynthesizer.load(forged)
    monkeypatch.setenv("SHOPGEN_BUNDLE_KEY", "another key")
    with pytest.raises(BundleError, match="signature that does not match"):
        CatalogSynthesizer.load(signed)


def test_saving_refuses_a_folder_of_other_files_and_replaces_a_bundle(tiny_synth, tmp_path):
    from shopgen.errors import BundleError

    synth, _ = tiny_synth
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "important.txt").write_text("keep")
    with pytest.raises(BundleError, match="not a shopgen bundle"):
        synth.save(victim)
    assert (victim / "important.txt").read_text() == "keep"
    empty = tmp_path / "empty"
    empty.mkdir()
    synth.save(empty)
    synth.save(empty)  # a bundle is replaced by a bundle
    assert (empty / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "victim"], "no temporary left"


def test_a_killed_runs_temporaries_are_removed_by_the_next_and_only_those(tiny_synth, tmp_path):
    synth, _ = tiny_synth
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".model.shopgen-tmp-{pid}-abcd1234"
    stale.mkdir()
    (stale / "half.pkl").write_text("x")
    mine = tmp_path / f".model.shopgen-tmp-{os.getpid()}-live0000"  # a live writer's: kept
    mine.mkdir()
    unrelated = tmp_path / ".model.backup"
    unrelated.mkdir()
    synth.save(tmp_path / "model")
    assert not stale.exists() and mine.exists() and unrelated.exists()


# ---- outputs a spreadsheet or a user relies on -------------------------------------------------------
def test_csv_cells_a_spreadsheet_would_run_are_neutralised_unless_raw(tmp_path):
    from shopgen.sinks import write

    df = pd.DataFrame({"name": ['=HYPERLINK("http://evil","x")', "+1 pack", "-", "@sum", "\t=1", "plain", None],
                       "price": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]})
    write(df, tmp_path / "safe.csv")
    back = pd.read_csv(tmp_path / "safe.csv")
    assert back["name"].tolist()[:5] == ["'" + v for v in df["name"][:5]]
    assert back["name"][5] == "plain" and back["price"][0] == -1.5
    write(df, tmp_path / "raw.csv", raw=True)
    assert pd.read_csv(tmp_path / "raw.csv")["name"][0] == df["name"][0]


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    from shopgen.sinks import write

    target = tmp_path / "private.csv"
    target.write_text("x\n1\n")
    target.chmod(0o600)
    write(pd.DataFrame({"x": [2]}), target)
    assert target.stat().st_mode & 0o777 == 0o600
    assert pd.read_csv(target)["x"].tolist() == [2]


def test_validate_reports_one_bad_cell_on_its_row_with_a_short_example(tmp_path, sample_df, sample_schema):
    from shopgen.validation import validate

    df = sample_df.astype({"price": object})
    df.loc[4, "price"] = "x" * 10_000_000
    result = validate(df, sample_schema)
    assert list(result.bad_rows) == [4]
    assert result.failures == {"price: a number": 1}
    assert len(str(result.examples["price: a number"][0])) < 100


def test_float_noise_within_the_decimals_passes_validation(sample_df, sample_schema):
    from shopgen.validation import validate

    df = sample_df.head(50).copy()
    df.loc[0, "price"] = 5.8100000000000005
    assert validate(df, sample_schema).success


def test_training_text_is_cut_to_the_schema_length_before_tokenizing(sample_schema, sample_df):
    """One 10 MB description must not hold fit in tokenizer training outside its budget."""
    from shopgen.synthesizer import CatalogSynthesizer

    df = sample_df.head(120).copy()
    df.loc[3, "description"] = "word " * 2_000_000
    synth = CatalogSynthesizer(sample_schema, tabular="copula", text_epochs=1, max_train_minutes=1 / 12,
                               show_progress=False).fit(df)
    guard = synth.text_model_.guards_["description"]
    assert guard.copies(["word " * 120]) == [True], "the model learnt the first 600 characters (max_length)"
    assert guard.copies(["word " * 2_000_000]) == [False], "not the 10 MB cell"
    assert synth.fit_seconds_["text"] < 60


# ---- servers that accept and never answer ---------------------------------------------------------
@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for s in held:
        s.close()
    server.close()


@pytest.mark.parametrize("scheme", ["mysql", "postgresql"])
def test_a_server_that_never_answers_fails_in_seconds(tiny_synth, silent_server, scheme):
    t0 = time.monotonic()
    proc = shopgen("seed", tiny_synth[1], "--db", f"{scheme}://root@127.0.0.1:{silent_server}/test", "--table", "t", "-n", "5")
    one_line_error(proc, 2, "cannot connect")
    assert time.monotonic() - t0 < 60


# ---- killed processes ------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _kill_when_workers_run(args: list[str], timeout: float = 300) -> list[int]:
    """Start the command, wait until its text workers exist, kill -9 it; returns the workers' pids."""
    proc = subprocess.Popen([sys.executable, "-m", "shopgen.cli", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    workers: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None:
        workers = _children(proc.pid)
        if len(workers) >= 2:
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.05)  # an early exit ends the wait; otherwise look at the process table again
    assert proc.poll() is None and len(workers) >= 2, "the text workers never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return workers


def _gone_within(pids: list[int], seconds: float) -> bool:
    import psutil

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def test_kill_9_of_sample_leaves_no_worker_and_no_file(tiny_synth, tmp_path):
    out = tmp_path / "out.csv"
    workers = _kill_when_workers_run(["sample", tiny_synth[1], "-n", "4000", "-o", out, "--text-workers", "2", "-q"])
    assert _gone_within(workers, 5)
    assert not out.exists()
    proc = shopgen("sample", tiny_synth[1], "-n", "20", "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"], "the killed run's temporary is cleaned up"


def test_kill_9_of_seed_leaves_no_worker_no_rows_and_no_lock(tiny_synth, db):  # noqa: F811
    """The killed load's connection dies with it (workers included), so the server drops its transaction
    and the next seed runs at once instead of waiting on a lock."""
    table = db.table()
    workers = _kill_when_workers_run(["seed", tiny_synth[1], "--db", db.url, "--table", table, "-n", "6000",
                                      "--batch-size", "2000", "-q"])
    assert _gone_within(workers, 5)
    assert not db.exists(table) or db.count(table) == 0
    rerun = threading.Thread(target=_write, args=(tiny_synth[0], db.url, table), daemon=True)
    rerun.start()
    rerun.join(timeout=60)
    assert not rerun.is_alive(), "the rerun waited on a lock the killed load left"
    assert db.count(table) == 30


def _write(synth, url: str, table: str) -> None:
    from shopgen.db import write

    write(synth.sample(30, seed=2).catalog, url, table, schema=synth.schema, if_exists="replace")
