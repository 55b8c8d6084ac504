"""The pinned numerical path (book.numerics): one set of bits on every x86-64 CPU for the same torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from book import numerics
from book.fingerprint import RECORDED_FINGERPRINT, differences

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "book" / "recorded"


def _python(code: str, **env) -> str:
    """Run ``code`` in a fresh interpreter (torch's kernel choice is fixed once per process)."""
    environ = {k: v for k, v in os.environ.items() if k not in numerics.PINNED and k != numerics.OPT_OUT}
    environ.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environ,
                          cwd=ROOT).stdout.strip()


def test_pin_sets_every_library_to_avx2_and_respects_the_opt_out():
    environ = {}
    assert numerics.pin(environ) and numerics.pinned(environ)
    assert environ == {"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    environ = {numerics.OPT_OUT: "1"}
    assert not numerics.pin(environ) and not numerics.pinned(environ)
    assert environ == {numerics.OPT_OUT: "1"}


def test_importing_the_package_pins_nothing():
    code = ("import os, book, book.numerics, book.ch1_degradation, book.exercises\n"
            "print(sorted(k for k in ('MKL_CBWR', 'ATEN_CPU_CAPABILITY', 'ONEDNN_MAX_CPU_ISA') if k in os.environ))")
    assert _python(code) == "[]"


def test_the_pin_takes_effect_after_import_but_before_the_first_computation():
    code = ("import torch, book.ch1_degradation, book.ch5_unrolled_view\n"
            "from book.numerics import pin, kernel_path; pin(); torch.ones(3).sum()\n"
            "print(kernel_path())")
    assert _python(code) == "pinned-avx2"


def test_a_pin_after_torch_computed_is_reported_not_silently_ignored():
    code = ("import torch; torch.ones(3).sum()\n"
            "from book.numerics import pin, problem, kernel_path; pin(); print(kernel_path()); print(problem())")
    path, problem = _python(code).splitlines()
    live = _python("import torch; print(torch.backends.cpu.get_cpu_capability().lower())")
    if live == "avx2":
        pytest.skip("this CPU's native path is AVX2: a late pin changes nothing")
    assert path == f"native-{live}" and "run the first cell first" in problem


def test_the_opt_out_keeps_native_kernels():
    code = "from book.numerics import pin, kernel_path; pin(); import torch; torch.ones(3).sum(); print(kernel_path())"
    assert _python(code, **{numerics.OPT_OUT: "1"}).startswith("native-")


@pytest.mark.skipif(not numerics.pinned(), reason="native kernels: the fingerprint is bit-exact only on the pinned path")
def test_the_fingerprint_matches_the_recorded_one():
    out = subprocess.run([sys.executable, "-m", "book.fingerprint"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "IDENTICAL" in out.stdout


def test_the_fingerprint_comparison_is_exact():
    record = json.loads(RECORDED_FINGERPRINT.read_text())
    then = record["runs"][0]
    nudged = json.loads(json.dumps(then))
    nudged["train_loss"][1] = repr(float(then["train_loss"][1]) + 1e-15)
    assert differences(then, then) == []
    assert differences(nudged, then) and "epoch 2 train_loss" in differences(nudged, then)[0]


def test_the_fingerprint_is_the_one_the_numerics_issue_measured_on_amd():
    # Two epochs of plain-20, seed 0, one thread, on the pinned path: the numbers measured on an AMD EPYC with
    # AVX-512 (MKL_CBWR=AVX2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2) before the pin was built.
    then = json.loads(RECORDED_FINGERPRINT.read_text())["runs"][0]
    assert then["train_loss"][1] == "1.5413647537231445" and then["train_error"][1] == "0.57725"


def test_recordings_refuse_to_run_off_the_pinned_path():
    environ = {k: v for k, v in os.environ.items() if k not in numerics.PINNED}
    environ[numerics.OPT_OUT] = "1"
    out = subprocess.run([sys.executable, "-m", "book.ch1_degradation", "record-long"], capture_output=True,
                         text=True, env=environ, cwd=ROOT)
    assert out.returncode == 2 and "refusing to record off the pinned path" in out.stdout


@pytest.mark.parametrize("path", sorted(RECORDED.glob("*.json")), ids=lambda p: p.name)
def test_every_recording_names_its_numerical_path_and_cpu(path):
    about = json.loads(path.read_text())["provenance"]
    assert about["kernels"].startswith("pinned AVX2 path"), about.get("kernels")
    assert about["machine"] and about["torch"]
