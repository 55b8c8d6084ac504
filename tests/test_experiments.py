import pytest

from book import experiments
from book.experiments import DepthRun, cached, is_cached, run_depth
from book.models import ConfigError


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
    experiments.clear_memory_cache()
    assert cached("unit", spec, compute) == {"value": 42}  # from disk
    assert len(calls) == 1 and is_cached("unit", spec)
    assert cached("unit", DepthRun(depth=8, seed=100), compute) and len(calls) == 2


def test_results_depend_on_the_code(monkeypatch):
    spec = DepthRun()
    key = experiments._key("unit", spec)
    monkeypatch.setattr(experiments, "code_fingerprint", lambda modules=None: "something-else")
    assert experiments._key("unit", spec) != key


@pytest.mark.parametrize("spec", [DepthRun(depth=0), DepthRun(depth=9), DepthRun(width=-1), DepthRun(seed=-1)])
def test_bad_runs_fail_fast_with_a_message(spec):
    with pytest.raises(ConfigError):
        run_depth(spec)
