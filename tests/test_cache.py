"""The result cache: computes once, survives a restart, and knows from the code what each result depends on."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from book import cache
from book.cache import atomic_write, cached, code_fingerprint, is_cached, module_dependencies, result_key
from book.trained_nets import DepthRun, run_depth
from book.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_cached_computes_once_and_survives_a_restart(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUAL_COURSE_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"value": 42}

    spec = DepthRun(depth=8, seed=99)
    assert not is_cached("unit", spec)
    assert cached("unit", spec, compute) == {"value": 42}
    assert cached("unit", spec, compute) == {"value": 42}
    cache.clear_memory_cache()
    assert cached("unit", spec, compute) == {"value": 42}  # from disk
    assert len(calls) == 1 and is_cached("unit", spec)
    assert cached("unit", DepthRun(depth=8, seed=100), compute) and len(calls) == 2


def test_a_corrupt_result_file_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUAL_COURSE_CACHE", str(tmp_path))
    spec = DepthRun(depth=8, seed=98)
    cached("unit", spec, lambda: {"value": 1})
    cache.clear_memory_cache()
    path = tmp_path / "experiments" / f"{result_key('unit', spec)}.json"
    path.write_text("{not json")
    assert cached("unit", spec, lambda: {"value": 2}) == {"value": 2}
    assert json.loads(path.read_text()) == {"value": 2}


def test_a_spec_outside_the_package_or_not_a_dataclass_is_refused():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Local:
        x: int = 1

    with pytest.raises(TypeError, match="defined in the book package"):
        result_key("unit", Local())
    with pytest.raises(TypeError, match="dataclass"):
        result_key("unit", {"x": 1})


def test_computing_code_the_key_does_not_cover_is_refused():
    # A Chapter 1 spec computed by Chapter 6's code: an edit to Chapter 6 would not change the key.
    from book import ch6_residual_stream

    compute = lambda: {}  # noqa: E731
    compute.__module__ = ch6_residual_stream.__name__
    with pytest.raises(RuntimeError, match="does not import it"):
        cached("unit", DepthRun(), compute, disk=False)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "a" / "result.json"
    atomic_write(target, "first")
    assert target.read_text() == "first"

    def fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, fail)
    assert target.read_text() == "first"                     # the old file is intact
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]  # no temporary file is left
    atomic_write(target, lambda f: f.write(b"\x00\x01"))
    assert target.read_bytes() == b"\x00\x01"


@pytest.mark.parametrize("spec", [DepthRun(depth=0), DepthRun(depth=9), DepthRun(width=-1), DepthRun(seed=-1)])
def test_bad_runs_fail_fast_with_a_message(spec):
    with pytest.raises(ConfigError):
        run_depth(spec)


# --------------------------------------------------------------------------- dependencies, read from the code

def test_a_chapter_depends_on_what_it_imports_and_nothing_else():
    deps = set(module_dependencies("book.ch3_gradient_highway"))
    assert {"book.ch3_gradient_highway", "book.nets.mlp", "book.probes", "book.data", "book.cache",
            "book.training", "book.errors"} <= deps
    # nothing a result of Chapter 3 does not import: widgets, grading, authoring, other chapters
    assert not {m for m in deps if "widgets" in m or "authoring" in m or m in ("book.grade", "book.exercises")}
    assert "book.trained_nets" in deps             # Chapter 3 probes the trained nets of Chapter 1
    assert not {m for m in module_dependencies("book.ch6_residual_stream") if m.startswith("book.ch")} - \
        {"book.ch6_residual_stream"}                 # the transformer chapter depends on no earlier chapter
    assert "book.ch1_degradation" not in module_dependencies("book.ch2_learn_the_change")
    # Chapter 5's results depend on the trained nets, not on the recordings of Chapters 1 and 4
    ch5 = set(module_dependencies("book.ch5_unrolled_view"))
    assert {"book.trained_nets", "book.nets.conv1d"} <= ch5
    assert not {"book.ch1_degradation", "book.ch4_building_resnets", "book.nets.resnets"} & ch5


def test_a_result_depends_only_on_the_code_it_computes_with():
    from book.ch3_gradient_highway import BNGradFlow
    from book.trained_nets import TrainedNet

    def depends_on(spec) -> set[str]:
        return set(module_dependencies(type(spec).__module__))

    # a Chapter 3 probe of a trained net: the probe, the net and its training, not Chapter 1's recording code
    # nor the ImageNet ResNets (Chapter 3 makes a recording of its own, so the recordings' foundation is in)
    probe = depends_on(BNGradFlow(trained=True))
    assert {"book.ch3_gradient_highway", "book.probes", "book.trained_nets", "book.nets.conv1d",
            "book.training", "book.data"} <= probe
    assert not {"book.ch1_degradation", "book.ch4_building_resnets", "book.nets.resnets"} & probe
    # a Chapter 4 (and 5) trained net with a scaled shortcut: no chapter module, no image ResNet, no recording code
    net = depends_on(TrainedNet(depth=20, shortcut_scale=0.5))
    assert {"book.trained_nets", "book.nets.conv1d", "book.nets.shortcuts", "book.training", "book.data"} <= net
    assert not {m for m in net if m.startswith("book.ch")}
    assert not {"book.nets.resnets", "book.records", "book.probes"} & net


def test_the_trained_net_store_writes_one_format_and_nothing_with_disk_false(tmp_path, monkeypatch):
    import torch

    from book import trained_nets
    from book.trained_nets import TrainedNet, trained_net

    monkeypatch.setenv("RESIDUAL_COURSE_CACHE", str(tmp_path))
    spec = TrainedNet(depth=8, seed=7, epochs=1, shortcut_scale=0.5)
    model, curves = trained_net(spec, progress=False, disk=False)
    assert not (tmp_path / "experiments").exists() or not list((tmp_path / "experiments").iterdir())
    assert trained_net(spec, progress=False, disk=False)[0] is model      # kept in memory
    cache.clear_memory_cache(), trained_nets._NETS.clear()
    stored, stored_curves = trained_net(spec, progress=False)             # trained again, and stored
    assert stored_curves.train_loss == curves.train_loss                  # the same run, bit for bit
    assert sorted(p.suffix for p in (tmp_path / "experiments").iterdir()) == [".json", ".pt"]
    cache.clear_memory_cache(), trained_nets._NETS.clear()
    loaded, loaded_curves = trained_net(spec, progress=False)             # read back: curves and weights
    assert loaded_curves == stored_curves
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), stored.state_dict().values()))
    # without a variant a TrainedNet is its DepthRun: one stored result
    run = DepthRun(depth=8, residual=True, seed=7, epochs=1)
    assert result_key("conv-net", run) == result_key("conv-net", trained_nets._stored_as(TrainedNet(run)))


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "pkg"


def test_dependencies_follow_every_kind_of_import_on_a_crafted_package(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": '"""docstring only"""\n',
        "a.py": "from .b import f\n",
        "b.py": "def f():\n    from . import c  # an import inside a function counts\n    return c\n",
        "c.py": "import pkg.sub.d as d\n",
        "sub/__init__.py": "",
        "sub/d.py": "from ..e import x\n",
        "e.py": "x = 1\n",
        "unrelated.py": "import json\n",
    })
    deps = module_dependencies("pkg.a", root=pkg, package="pkg")
    assert deps == ("pkg.a", "pkg.b", "pkg.c", "pkg.e", "pkg.sub.d")
    # an edit to a dependency changes the fingerprint; an edit elsewhere does not
    before = code_fingerprint("pkg.a", root=pkg, package="pkg")
    (pkg / "unrelated.py").write_text("import json  # edited\n")
    assert code_fingerprint("pkg.a", root=pkg, package="pkg") == before
    (pkg / "e.py").write_text("x = 2\n")
    os.utime(pkg / "e.py", ns=(1, 1))  # even with an old modification time the new source is read
    assert code_fingerprint("pkg.a", root=pkg, package="pkg") != before


def test_a_hand_listed_dependency_set_would_miss_an_import(tmp_path):
    # The failure the cache guards against, shown on a crafted package: a hand-written list that
    # names the obvious modules misses one imported inside a function, so an edit there would be served stale.
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "experiment.py": "from .model import Net\n",
        "model.py": "def Net():\n    from .init import scheme\n    return scheme\n",
        "init.py": "scheme = 'kaiming'\n",
    })
    hand_listed = {"pkg.experiment", "pkg.model"}
    found = set(module_dependencies("pkg.experiment", root=pkg, package="pkg"))
    assert found - hand_listed == {"pkg.init"}


# --------------------------------------------------------------------------- both directions on a real chapter experiment

RUN_CHAPTER_3 = """
import json, sys
from book import cache
from book.ch3_gradient_highway import GradFlow, gradient_flow
calls = []
original = cache.cached
def counting(kind, spec, compute, disk=True):
    def wrapped():
        calls.append(kind)
        return compute()
    wrapped.__module__ = compute.__module__
    return original(kind, spec, wrapped, disk=disk)
import book.ch3_gradient_highway as ch3
ch3.cached = counting
stats = gradient_flow(GradFlow(depth=4, residual=True, width=16, batch_size=32))
print(json.dumps({"computed": len(calls), "key": cache.result_key("gradflow", GradFlow(depth=4, residual=True, width=16, batch_size=32)), "first": stats.grad_norm[1]}))
"""


def _run_copy(package_copy: Path, cache_folder: Path) -> dict:
    env = {**os.environ, "RESIDUAL_COURSE_CACHE": str(cache_folder), "PYTHONPATH": str(package_copy)}
    out = subprocess.run([sys.executable, "-c", RUN_CHAPTER_3], cwd=package_copy, env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_editing_a_module_a_result_does_not_import_keeps_it_and_editing_one_it_does_recomputes_it(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "book", copy / "book", ignore=shutil.ignore_patterns("__pycache__"))
    results = tmp_path / "cache"
    first = _run_copy(copy, results)
    assert first["computed"] == 1
    assert _run_copy(copy, results)["computed"] == 0           # warm: from disk

    # authoring-only, a widget module, the grader and another chapter: the result stays
    for unrelated in ("authoring/site_check.py", "ch3_widgets.py", "grade.py", "ch6_residual_stream.py"):
        with open(copy / "book" / unrelated, "a") as f:
            f.write("\n# an edit that changes no result\n")
    again = _run_copy(copy, results)
    assert again["computed"] == 0 and again["key"] == first["key"]

    # a module the result imports (the MLP stacks it probes): recomputed, under a new key
    with open(copy / "book" / "nets" / "mlp.py", "a") as f:
        f.write("\n# an edit to a network the result depends on\n")
    edited = _run_copy(copy, results)
    assert edited["computed"] == 1 and edited["key"] != first["key"]
    assert edited["first"] == first["first"]                     # same code, same numbers
