"""The fused coordinate-wise kernels: bit-for-bit agreement with the eager path, fallback, no compile at import."""
import logging
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import aggregators
from aggregators import coordinatewise, fused, kernels

ROOT = Path(__file__).resolve().parents[2]
needs_compiler = pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler (g++)")

STATISTICS = {  # (x, f) -> the statistic each rule computes, as the rules call it
    "median": lambda x, f: coordinatewise.median(x, f),
    "trmean": lambda x, f: coordinatewise.trimmed_mean(x, f),
    "meamed": lambda x, f: coordinatewise.mean_around_median(x, f),
    "phocas": lambda x, f: coordinatewise.mean_around_trimmed_mean(x, f),
    "bulyan-phase-2": lambda x, f: (coordinatewise.mean_around_median(x[:x.shape[0] - 2 * f], f, spread=2)
                                    if x.shape[0] >= 4 * f + 3 else torch.zeros(1)),
}
SPECIALISED = [(2, 0, torch.float32), (7, 2, torch.float32), (26, 5, torch.float32), (9, 2, torch.float64)]


@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory):
    """A cache folder holding the generic kernel and the specialised ones of SPECIALISED, built once (~10 s)."""
    folder = tmp_path_factory.mktemp("byzsim-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BYZSIM_CACHE_DIR", str(folder))
        for n, f, dtype in SPECIALISED:
            fused.build(n, f, dtype)
    return folder


@pytest.fixture
def kernel(monkeypatch, kernel_dir):
    monkeypatch.setenv("BYZSIM_CACHE_DIR", str(kernel_dir))
    monkeypatch.setenv("BYZSIM_FUSED", "auto")
    assert fused.available()


def eager(fn, *args):
    saved = os.environ.get("BYZSIM_FUSED")
    os.environ["BYZSIM_FUSED"] = "0"
    try:
        return fn(*args)
    finally:
        os.environ.pop("BYZSIM_FUSED") if saved is None else os.environ.__setitem__("BYZSIM_FUSED", saved)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bit for bit, every NaN counting as the same NaN."""
    if a.shape != b.shape or a.dtype != b.dtype or not torch.equal(a.isnan(), b.isnan()):
        return False
    as_int = torch.int32 if a.dtype == torch.float32 else torch.int64
    return torch.equal(a.nan_to_num(nan=0.0, posinf=math.inf, neginf=-math.inf).view(as_int),
                       b.nan_to_num(nan=0.0, posinf=math.inf, neginf=-math.inf).view(as_int))


def make(n: int, d: int, kind: str, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "ties":  # few distinct values, zeros of both signs
        x = torch.randint(-2, 3, (n, d), generator=g).to(dtype) * (torch.randint(0, 2, (n, d), generator=g) * 2 - 1)
        return x.to(dtype)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    if kind == "special":
        for value in (math.nan, math.inf, -math.inf, 0.0, -0.0):
            x[torch.rand(n, d, generator=g) < 0.08] = value
    elif kind == "nan-row":
        x[int(torch.randint(0, n, (1,), generator=g))] = math.nan
    elif kind == "huge":
        x[torch.rand(n, d, generator=g) < 0.2] = torch.finfo(dtype).max
    return x


@needs_compiler
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), d=st.sampled_from([1, 7, 31, 33, 97, 250]), seed=st.integers(0, 2**16),
       kind=st.sampled_from(["normal", "ties", "special", "nan-row", "huge"]),
       dtype=st.sampled_from([torch.float32, torch.float64]), data=st.data())
def test_fused_equals_eager_bit_for_bit(kernel_dir, n, d, seed, kind, dtype, data):
    f = data.draw(st.integers(0, (n - 1) // 2))
    x = make(n, d, kind, dtype, seed)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BYZSIM_CACHE_DIR", str(kernel_dir))
        patch.setenv("BYZSIM_FUSED", "auto")
        for name, statistic in STATISTICS.items():
            assert same_bits(statistic(x, f), eager(statistic, x, f)), (name, n, d, f, kind, dtype)


@needs_compiler
@pytest.mark.parametrize("n, f, dtype", SPECIALISED)
@pytest.mark.parametrize("kind", ["normal", "ties", "special", "nan-row", "huge"])
def test_specialised_kernels_equal_eager_bit_for_bit(kernel, n, f, dtype, kind):
    assert fused.available(dtype, n, fused.MEDIAN) == "specialised"
    assert fused.available(dtype, n, fused.CLOSEST_TO_TRIMMED_MEAN, f, n - f) == "specialised"
    for d in [1, 15, 16, 17, 101]:  # around one block of 64 bytes, and a partial last block
        x = make(n, d, kind, dtype, seed=d)
        for name, statistic in STATISTICS.items():
            assert same_bits(statistic(x, f), eager(statistic, x, f)), (name, d)


@needs_compiler
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n, f", [(37, 9), (26, 5)])  # the generic kernel, a specialised one
def test_fused_equals_eager_on_a_large_input_on_several_threads(kernel, threads, n, f):
    x = make(n, 5003, "special", torch.float32, 3)
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for name, statistic in STATISTICS.items():
            assert same_bits(statistic(x, f), eager(statistic, x, f)), name
    finally:
        torch.set_num_threads(saved)


@needs_compiler
@pytest.mark.parametrize("spec", ["median", "trmean", "meamed", "phocas", "bulyan"])
def test_rules_agree_on_both_paths_and_on_strided_input(kernel, spec):
    x = make(23, 2 * 301, "normal", torch.float32, 5)[:, ::2]  # columns two apart
    rule = aggregators.get(spec)
    assert same_bits(rule(x, 4), eager(rule, x, 4))


@needs_compiler
def test_fused_path_is_used_when_built(kernel, monkeypatch):
    x = make(9, 40, "normal", torch.float64, 1)
    monkeypatch.setattr(coordinatewise, "sorted_rows", lambda *a: pytest.fail("eager path taken"))
    for chosen, kind in [("auto", "specialised"), ("generic", "generic")]:
        monkeypatch.setenv("BYZSIM_FUSED", chosen)
        assert fused.available(torch.float64, 9) == kind
        coordinatewise.median(x)


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty kernel cache and this process's fused state as at start (nothing loaded, asked or built)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BYZSIM_CACHE_DIR", str(cache))
    monkeypatch.delenv("BYZSIM_FUSED", raising=False)
    monkeypatch.setattr(fused, "_background", fused._Background())
    monkeypatch.setattr(fused, "_loaded", {})
    return cache


def rules_agree_with_eager(n: int = 9, f: int = 2) -> None:
    x = make(n, 300, "special", torch.float32, 4)
    for spec in ["median", "trmean", "meamed", "phocas"]:
        rule = aggregators.get(spec)
        assert same_bits(rule(x, f), eager(rule, x, f)), spec


@needs_compiler
def test_the_default_mode_builds_in_the_background_once_per_machine_and_later_runs_reuse_it(fresh):
    x = make(9, fused.WORTH_A_BUILD, "special", torch.float32, 4)  # wide enough to ask for a specialised kernel
    median = aggregators.get("median")
    assert same_bits(median(x, 2), eager(median, x, 2))  # the first call: eager, while the kernels build
    fused.wait()
    built = fused.built_here()
    assert [kernel for kernel, _, ok in built if ok] == ["generic", "float32, n = 9, statistic 0, trim = 0, k = 1"]
    assert fused.available(torch.float32, 9) == "specialised" and fused.cached(torch.float32, 9) == "specialised"
    rules_agree_with_eager()  # narrow inputs (and the NaN columns computed again) take the generic kernel
    fused.wait()
    libraries = {p.name: p.stat().st_mtime_ns for p in fresh.iterdir()}
    assert len(libraries) == 2 and all(name.endswith(".so") for name in libraries)  # nothing pending or failed
    # another run on the same machine: every kernel from the cache, nothing built again
    code = ("import torch, aggregators, aggregators.fused as fused\n"
            f"x = torch.randn(9, {fused.WORTH_A_BUILD})\n"
            "aggregators.get('median')(x, 2)\n"
            "assert fused.available(torch.float32, 9) == 'specialised', fused.available(torch.float32, 9)\n"
            "fused.wait(); assert fused.built_here() == [], fused.built_here()\n")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, check=True,
                   timeout=120)
    assert {p.name: p.stat().st_mtime_ns for p in fresh.iterdir()} == libraries


def test_without_a_compiler_the_rules_take_the_eager_path_with_one_log_line(fresh, monkeypatch, caplog):
    monkeypatch.setenv("CXX", str(fresh.parent / "no-such-compiler"))
    caplog.set_level(logging.DEBUG, logger="byzsim")
    for chosen in ["auto", "1"]:  # in the background or before the call: the same line, once
        monkeypatch.setenv("BYZSIM_FUSED", chosen)
        rules_agree_with_eager()
        rules_agree_with_eager(23, 5)
    fused.wait()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "no C++ compiler" in warnings[0] and "no-such-compiler" in warnings[0]
    assert not fused.available() and fused.built_here() == []
    assert not fresh.exists() or not any(p.suffix == ".so" for p in fresh.iterdir())


@needs_compiler
def test_a_failed_build_is_not_tried_again_by_later_runs(fresh, monkeypatch, caplog):
    compiler = fresh.parent / "broken-compiler"
    compiler.write_text("#!/bin/sh\necho 'broken on purpose' >&2\nexit 1\n")
    compiler.chmod(0o755)
    monkeypatch.setenv("CXX", str(compiler))
    rules_agree_with_eager()
    fused.wait()
    assert fused.built_here() and not any(ok for _, _, ok in fused.built_here())
    failed = sorted(p for p in fresh.iterdir() if p.name.endswith(".failed"))
    assert failed and "broken on purpose" in failed[0].read_text()
    monkeypatch.setattr(fused, "_background", fused._Background())  # as a new run would start
    caplog.set_level(logging.WARNING, logger="byzsim")
    rules_agree_with_eager()
    fused.wait()
    assert fused.built_here() == []  # nothing started again
    assert len(caplog.records) == 1 and "failed to build" in caplog.records[0].getMessage()


def test_cached_mode_builds_nothing(fresh, monkeypatch):
    monkeypatch.setenv("BYZSIM_FUSED", "cached")
    rules_agree_with_eager()
    assert not fused.available() and fused.built_here() == [] and not fresh.exists()


def test_a_corrupt_library_falls_back_to_eager_with_a_debug_line(fresh, monkeypatch, caplog):
    fresh.mkdir()
    kernels.library_path(kernels.generic_source()).write_bytes(b"not a shared library")
    monkeypatch.setenv("BYZSIM_FUSED", "generic")
    caplog.set_level(logging.DEBUG, logger="byzsim")
    rules_agree_with_eager(11, 2)
    assert not fused.available()
    assert "fused selection unavailable" in caplog.text


def test_inputs_the_kernel_does_not_take_go_to_the_eager_path():
    assert fused.select(torch.zeros(3, 4, device="meta"), fused.MEDIAN) is None
    assert fused.select(torch.zeros(3, 4, dtype=torch.float16), fused.MEDIAN) is None
    assert fused.select(torch.zeros(3, 4, requires_grad=True), fused.MEDIAN) is None
    assert fused.select(torch.zeros(200, 4), fused.MEDIAN) is None  # n above the network's limit
    assert fused.select(torch.zeros(5, 4), fused.TRIMMED_MEAN, trim=3) is None


def test_importing_aggregators_compiles_nothing(tmp_path):
    code = ("import aggregators, aggregators.fused as fused\n"
            "[aggregators.get(name) for name in ('median', 'trmean', 'meamed', 'phocas', 'bulyan')]\n"
            "assert fused._loaded == {}, fused._loaded\n")
    env = {**os.environ, "BYZSIM_CACHE_DIR": str(tmp_path), "BYZSIM_FUSED": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, timeout=120)
    assert list(tmp_path.iterdir()) == []


@needs_compiler
def test_a_run_ends_with_the_same_bits_on_the_fused_kernels_as_on_the_eager_path(fresh, monkeypatch, tmp_path):
    from simulator import Config, run
    ends = {}
    for chosen in ["0", "1"]:  # 1: the kernels built before the first call, so every step takes them
        monkeypatch.setenv("BYZSIM_FUSED", chosen)
        config = Config(dataset="digits", nb_workers=9, nb_decl_byz=2, aggregator="median", attack="alie", steps=6,
                        eval_every=3, output=str(tmp_path / chosen))
        folder = run(config, progress=False).folder
        module = torch.load(folder / "checkpoint.pt", weights_only=False)["module"]
        metrics = (folder / "metrics.csv").read_text().splitlines()
        ends[chosen] = module, [line.rsplit(",", 1)[0] for line in metrics]  # step_time, the last column, aside
    assert fused.available(torch.float32, 9) == "specialised"
    assert ends["0"][1] == ends["1"][1]
    assert all(torch.equal(ends["0"][0][name], ends["1"][0][name]) for name in ends["0"][0])
