"""Importing the package has no side effects; its requirements stay loose."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, random, numpy as np, torch, matplotlib as mpl
state = (torch.random.get_rng_state().sum().item(), float(np.random.get_state()[1].sum()), random.getstate()[1][:3],
         torch.get_num_threads(), dict(mpl.rcParams))
import importlib, pkgutil, book
names = []
for m in pkgutil.walk_packages(book.__path__, "book."):  # subpackages (book.nets, book.authoring) too
    names.append(m.name)
    importlib.import_module(m.name)
assert "book.nets.mlp" in names and "book.authoring.bench" in names and "book.grade" in names, names
after = (torch.random.get_rng_state().sum().item(), float(np.random.get_state()[1].sum()), random.getstate()[1][:3],
         torch.get_num_threads(), dict(mpl.rcParams))
print(json.dumps([state[i] == after[i] for i in range(5)]))
"""


def test_importing_every_module_changes_no_seed_style_or_thread_count():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[true, true, true, true, true]"


def test_runtime_requirements_pin_nothing_colab_already_has():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for name in ("torch", "numpy", "matplotlib", "ipython", "IPython"):
        for d in deps:
            if d.split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower() == name.lower():
                assert d.strip().lower() == name.lower(), f"{d} must not pin a version"
    assert "ipywidgets>=7.6,<9" in deps


# book.glue: tests/test_glue.py


def test_bench_reads_execution_times_of_a_build(tmp_path):
    import pickle
    import types

    from book.authoring.bench import _exec_times, main

    assert _exec_times(tmp_path) == {}
    env = types.SimpleNamespace(nb_metadata={"chapters/x": {"exec_data": {"runtime": 12.5}}, "intro": {}})
    (tmp_path / ".doctrees").mkdir()
    with open(tmp_path / ".doctrees" / "environment.pickle", "wb") as f:
        pickle.dump(env, f)
    assert _exec_times(tmp_path) == {"chapters/x": 12.5}
    try:
        main(["--help"])
    except SystemExit as exit:
        assert exit.code == 0


def test_cache_command_lists_what_a_chapters_results_depend_on():
    """``python -m book.cache MODULE`` (documented in the README) prints the modules that key MODULE's results."""
    run = subprocess.run([sys.executable, "-m", "book.cache", "book.ch3_gradient_highway"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    printed = run.stdout.split()
    assert run.returncode == 0, run.stderr
    assert "book.ch3_gradient_highway" in printed and "book.probes" in printed
    assert not any("widgets" in name or name.startswith("book.grad") for name in printed)
    wrong = subprocess.run([sys.executable, "-m", "book.cache", "book.no_such_chapter"],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert wrong.returncode == 2 and "not a module" in wrong.stderr and "Traceback" not in wrong.stderr
