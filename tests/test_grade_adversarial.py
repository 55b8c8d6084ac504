"""Submissions that try to talk their way around the grader: each earns nothing it did not solve, and changes nothing else.

One batch, graded once in the real bubblewrap sandbox: an unsolved exercise-4 notebook with one attack each
(patching the checks, a fake module, an import hook, IPython hooks, patched torch, Tensor and int subclasses,
forged answers, the judges' own references, a detached process that edits the gradebook after grading, writes to the installed grader,
reading and overwriting a classmate's notebook, reading the hidden tests, resource abuse), next to honest
solved notebooks that must keep full marks.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

import book.exercises as ex
from book.exercises import protocol, sources
from book.grading.collect import SOURCE_DIR
from book.grading import cli, collect, exchange
from book.grading import gradebook as reports
from book.grading.results import GradeConfig, SubmissionResult
from book.grading.sandbox import remove_tree, unavailable_reason

ROOT = Path(__file__).resolve().parent.parent
STUDENT = ROOT / "exercises" / "ex04_building_resnets.ipynb"
SOLVED = ROOT / "tests" / "fixtures" / "submissions" / "correct.ipynb"
LIMITS = ["--cell-timeout", "30", "--test-timeout", "30", "--timeout", "120"]

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=f"no sandbox: {unavailable_reason()}")

FORGED = '{"answers": [{"value": 269722}, {"value": 464154}, {"value": 658586}, {"value": 853018}, {"value": 1727962}]}'

ATTACKS = {
    # patching the checks and the grader's entry points in the learner's kernel
    "patch_checks": f"""
import json, book.exercises as e, book.exercises.protocol as p
e.grade_task = lambda *a, **k: print('passed')
e.check_basic_block = e.check_cifar_resnet_parameters = lambda *a, **k: e.Feedback('t', True, 'passed')
p.answer = lambda request, namespace: {FORGED!r}
p.judge = lambda *a, **k: e.Feedback('t', True, 'passed')
""",
    # a fake module in sys.modules
    "fake_module": f"""
import sys, types
fake = types.ModuleType('book.exercises.protocol')
fake.answer = lambda request, namespace: {FORGED!r}
sys.modules['book.exercises.protocol'] = fake
import book.exercises
book.exercises.protocol = fake
""",
    # an import hook that hands out the fake module
    "import_hook": f"""
import sys, types, importlib.abc, importlib.machinery
class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == 'book.exercises.protocol':
            return importlib.machinery.ModuleSpec(name, self)
    def create_module(self, spec):
        m = types.ModuleType(spec.name)
        m.answer = lambda request, namespace: {FORGED!r}
        return m
    def exec_module(self, module):
        pass
sys.meta_path.insert(0, Finder())
sys.modules.pop('book.exercises.protocol', None)
""",
    # IPython: a custom exception handler, and an input transformer that rewrites the grader's cells
    "ipython_hooks": f"""
ip = get_ipython()
ip.set_custom_exc((BaseException,), lambda shell, etype, evalue, tb, tb_offset=None: print('passed'))
def rewrite(lines):
    if any('grader' in line for line in lines):
        return ['print(' + repr('\\x1egrader-answer:' + {FORGED!r}) + ')\\n']
    return lines
ip.input_transformers_post.append(rewrite)
""",
    # the judges' own references: imported, or read from the package's folder and run
    "judges_references": """
import pathlib, types, book.exercises as e
try:
    from book.exercises import ex04 as judges
except ImportError as err:
    print('no judge module:', err)
    judges = types.SimpleNamespace()
    source = pathlib.Path(e.__file__).with_name('ex04.py')
    try:
        code = source.read_text().replace('from ..', 'from book.').replace('from .', 'from book.exercises.')
        exec(compile(code, str(source), 'exec'), vars(judges))
    except Exception as err:
        print('no judge source:', type(err).__name__)
def cifar_resnet_parameters(depth):
    return judges._cifar_counts(depth)['correct']
""",
    # patched comparisons
    "patch_torch": """
import math, torch
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.Tensor.__eq__ = lambda *a, **k: torch.tensor(True)
math.isclose = lambda *a, **k: True
""",
    # type confusion: values that claim to equal anything
    "type_confusion": """
import torch
from torch import nn
class Anything(int):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = int.__hash__
def cifar_resnet_parameters(depth):
    return Anything(0)
class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal): return True
        return super().__torch_function__(func, types, args, kwargs or {})
class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out))
        self.branch = nn.Sequential(nn.BatchNorm1d(c_in))
        self.stride, self.c_out = stride, c_out
    def forward(self, x):
        s = self.shortcut(x)
        return torch.zeros(x.shape[0], self.c_out, x.shape[2] // self.stride).as_subclass(Agreeable)
""",
    # the detached process that waits for the grader to write the gradebook, then edits it
    "forge_later": """
import os, subprocess, sys
code = '''
import glob, os, time
time.sleep(4)
for path in glob.glob("/**/gradebook.csv", recursive=True) + [os.environ.get("OUT_GUESS", "") + "/gradebook.csv"]:
    try:
        open(path, "a").write("forge_later,,ex04_building_resnets,ok,4,2,6,6,FORGED\\\\n")
    except OSError:
        pass
'''
subprocess.Popen([sys.executable, '-c', code + '#FORGE_LATER_MARKER'], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
""",
    # the installed grader and the course package
    "tamper_install": """
import book, book.exercises, os, sys
for path in (book.exercises.__file__, os.path.join(os.path.dirname(book.__file__), 'grading', 'judge.py'),
             os.path.join(sys.prefix, 'tampered.pth')):
    try:
        open(path, 'a').write('\\nimport os  # tampered\\n')
        print('wrote', path)
    except OSError as err:
        print('refused', path, err)
""",
    # classmates and hidden tests: known paths, /proc, and the feedback as a channel out
    "reach_classmates": """
import glob, os
found = []
for pid in os.listdir('/proc'):
    try:
        found.append(open(f'/proc/{pid}/cmdline').read())
    except OSError:
        pass
def walk(pattern):
    hits = []
    for top, dirs, files in os.walk('/'):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in ('/proc', '/sys', '/dev', '/usr')]
        hits += [os.path.join(top, f) for f in files if glob.fnmatch.fnmatch(f, pattern)]
    return hits
targets = glob.glob('SUBS_DIR/*.ipynb') + walk('*.ipynb')
for path in targets:
    try:
        open(path, 'w').write('{}')
    except OSError:
        pass
secret = ''
for path in ['HIDDEN_TESTS'] + walk('ex04_*.md'):
    try:
        secret += open(path).read()
    except OSError:
        pass
raise ValueError('LEAK ' + repr(found) + secret + 'x' * 5000)
""",
    # the host: root-only files, /proc/sys, capabilities, privileged system calls, the runner's pipes, the
    # scratch caps, a deep tree; the report comes back in one compact error (and tries to forge a heading)
    "escape": r"""
import ctypes, errno, glob, os
r = {}
def t(name, f):
    try:
        f(); r[name] = 'ok'
    except OSError as e:
        r[name] = {errno.EACCES: 'A', errno.EPERM: 'P', errno.EROFS: 'R', errno.ENOSPC: 'S'}.get(e.errno, str(e.errno))
t('secret', lambda: open('SECRET_FILE').read())
t('shadow', lambda: open('/etc/shadow').read())
t('core', lambda: open('/proc/sys/kernel/core_pattern', 'w').write(open('/proc/sys/kernel/core_pattern').read()))
t('setuid', lambda: os.setuid(0))
libc = ctypes.CDLL(None, use_errno=True)
def sc(name, *a):
    def call():
        if libc.syscall(*a) == -1:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    t(name, call)
runner = [int(p) for p in os.listdir('/proc') if p.isdigit() and
          b'book.grading.runner' in open(f'/proc/{p}/cmdline', 'rb').read()][0]
sc('ptrace', 101, 16, runner, 0, 0)
sc('unshare', 272, 0x10000000)
sc('clone', 56, 0x10000000 | 17, 0, 0, 0, 0)
sc('mount', 165, b'none', b'/tmp', b'tmpfs', 0, 0)
sc('keyctl', 250, 0, 0, 0)
sc('bpf', 321, 0, 0, 0)
sc('perf', 298, 0, 0, -1, -1, 0)
sc('module', 313, -1, b'', 0)
t('stdin', lambda: open(f'/proc/{runner}/fd/0', 'wb'))
t('chan', lambda: open(f'/proc/{runner}/fd/1', 'wb'))
def fill(folder):
    try:
        for i in range(400):
            with open(f'{folder}/fill{i}', 'wb') as f:
                f.write(b'x' * 2**20)
    finally:
        for name in glob.glob(f'{folder}/fill*'):
            os.remove(name)
t('shm', lambda: fill('/dev/shm'))
t('tmp', lambda: fill('/tmp'))
def deep():
    os.chdir(os.environ['HOME'])
    for _ in range(1500):
        os.mkdir('d')
        os.chdir('d')
t('deep', deep)
caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')][0]
raise ValueError('HOST ' + ' '.join(f'{k}={v}' for k, v in r.items()) + f' uid={os.getuid()} caps={caps}'
                 + ' \n## Task 1 · forged ✓\n<img src=x>')
""",
    # a forged shortcut description whose padding would make the judge allocate most of the RAM
    "forged_size": """
import book.exercises.cases.ex04 as ex04
big = 2**40
ex04._describe = lambda module: [{'type': 'Conv1d', 'weight': {'tensor': {'shape': [4, 4, 1], 'kind': 'float', 'data': [0.0] * 16}},
                                  'bias': None, 'stride': [1], 'padding': [big]}]
""",
    # a "measurement" that is a constant inside the hidden test's range (1.3 to 2.0): asked again on a drawn seed
    "constant_measurement": """
def early_training_loss(depth, zero_init, seed, epochs=2, data=None):
    return 1.65
""",
}

# resource abuse next to a correct solution: the limits stop the abuse, the solution keeps its marks
ABUSE = """
import os, subprocess
errors = []
try:
    block = bytearray(4 * 2**30)
except MemoryError:
    errors.append('memory')
children = []
try:
    for _ in range(1000):
        children.append(subprocess.Popen(['sleep', '60']))
except OSError:
    errors.append('processes')
for child in children:
    child.kill()
    child.wait()
try:
    with open('big.bin', 'wb') as f:
        f.write(b'x' * (200 * 2**20))
except OSError:
    errors.append('file size')
try:
    os.chdir('/')
    open('/outside.txt', 'w').write('x')
except OSError:
    errors.append('read-only root')
print('stopped:', errors)
"""


def _notebook(cells: list[str], solved: bool = False):
    nb = nbformat.read(SOLVED if solved else STUDENT, as_version=4)
    for i, source in enumerate(cells):
        cell = new_code_cell(source)
        cell["id"] = f"attack-{i}"
        nb.cells.append(cell)
    return nb


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "gradebook.csv", newline="") as f:
        return {row["submission"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    base = tmp_path_factory.mktemp("adversarial")
    subs, out = base / "subs", base / "out"
    subs.mkdir()
    hidden = ROOT / "exercises" / "source" / "ex04_building_resnets.md"
    secret = Path(sys.prefix) / "book-grade-secret.txt"   # a root-only file inside a folder the sandbox shows
    secret.write_text("ROOT-ONLY-SECRET")
    secret.chmod(0o600)
    for name, source in ATTACKS.items():
        source = source.replace("SUBS_DIR", str(subs)).replace("HIDDEN_TESTS", str(hidden))
        source = source.replace("SECRET_FILE", str(secret))
        nbformat.write(_notebook([source]), subs / f"{name}.ipynb")
    # file-level attacks that cost no kernel: a formula and a long multi-byte name, a FIFO, a 1,500-deep folder
    nbformat.write(_notebook([]), subs / ("=1+2" + "漢" * 70 + ".ipynb"))
    os.mkfifo(subs / "fifo.ipynb")
    deep = subs / "deep"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY)
    for _ in range(1500):
        os.mkdir("d", dir_fd=fd)
        fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
    os.close(fd)
    nbformat.write(_notebook([ABUSE], solved=True), subs / "abuse.ipynb")
    nbformat.write(_notebook([]), subs / "blank.ipynb")
    for name in ("honest", "victim"):
        nbformat.write(_notebook([], solved=True), subs / f"{name}.ipynb")
    before = {p.name: p.read_bytes() for p in subs.iterdir() if p.is_file()}
    package = {p: p.read_bytes() for p in [ROOT / "book" / "grade.py", *(ROOT / "book" / "grading").glob("*.py"),
                                           *(ROOT / "book" / "exercises").glob("*.py")]}
    started = time.monotonic()
    env = dict(os.environ, OUT_GUESS=str(out))
    proc = subprocess.run([sys.executable, "-m", "book.grade", str(subs), "--out", str(out), "--exercise", "ex04",
                           "--quiet", *LIMITS], capture_output=True, text=True, env=env, timeout=20 * 200)
    seconds = time.monotonic() - started
    gradebook = (out / "gradebook.csv").read_text() if (out / "gradebook.csv").exists() else ""
    time.sleep(6)   # longer than forge_later's sleep
    secret.unlink()
    remove_tree(deep / "d")   # pytest's own clean-up of old temporary folders would recurse 1,500 deep
    return {"proc": proc, "out": out, "subs": subs, "before": before, "package": package, "gradebook": gradebook,
            "seconds": seconds}


LONG = "1_2" + "漢" * 25      # the long name, cut at 80 bytes in UTF-8 (3 per character)


def test_the_batch_completes(batch):
    assert batch["proc"].returncode == 0, batch["proc"].stderr[-3000:]
    assert set(_rows(batch["out"])) == set(ATTACKS) | {"abuse", "blank", "honest", "victim", LONG, "deep"}


def _host_report(batch) -> dict[str, str]:
    details = _rows(batch["out"])["escape"]["details"]
    words = details[details.index("HOST"):].split()
    return dict(w.split("=", 1) for w in words[1:] if "=" in w)


def test_the_learner_is_not_root_on_the_host(batch):
    """The grader runs as root here (as in a container or on Gradescope); the notebook's code does not."""
    report = _host_report(batch)
    # A: EACCES, P: EPERM, R: EROFS, S: ENOSPC
    assert report["secret"] == "A" and report["shadow"] == "A", report      # root-only files
    assert report["core"] in ("R", "A"), report                               # /proc/sys read-only
    assert report["setuid"] in ("P", "22") and report["caps"] == "0000000000000000", report   # 22: EINVAL, no 0
    assert report["uid"] != "0"
    assert "ROOT-ONLY-SECRET" not in (batch["out"] / "feedback" / "escape.md").read_text()


def test_privileged_system_calls_are_refused(batch):
    report = _host_report(batch)
    for call in ("ptrace", "unshare", "clone", "mount", "keyctl", "bpf", "perf", "module"):
        assert report[call] == "P", (call, report)


def test_the_kernel_cannot_reach_the_runners_pipes(batch):
    report = _host_report(batch)
    assert report["stdin"] == "A" and report["chan"] == "A", report


def test_scratch_space_is_capped_and_leaves_nothing(batch):
    report = _host_report(batch)
    assert report["shm"] == "S" and report["tmp"] == "S", report
    assert report["deep"] == "ok"                      # allowed, in memory, and gone with the sandbox
    assert not list(Path(tempfile.gettempdir()).glob("book-grade-*/**/d/d/d"))


def test_learner_text_cannot_forge_report_structure(batch):
    feedback = (batch["out"] / "feedback" / "escape.md").read_text()
    assert "\n## Task 1 · forged" not in feedback
    assert "<img" not in feedback and "&lt;img" in feedback


def test_a_forged_size_is_refused_before_the_judge_computes(batch):
    row = _rows(batch["out"])["forged_size"]
    assert row["total"] == "0" and row["status"] != "grader-error"


def test_names_fifos_formulas_and_deep_folders(batch):
    rows = _rows(batch["out"])
    assert len(LONG.encode()) <= 80 and rows[LONG]["original_path"].startswith("'=1+2")   # a formula, neutralized
    assert (batch["out"] / "feedback" / f"{LONG}.md").exists()
    assert rows["deep"]["status"] == "no-notebook"
    with open(batch["out"] / "collection.csv", newline="") as f:
        log = {row["path"]: row["what the grader did"] for row in csv.DictReader(f)}
    assert log["fifo.ipynb"].startswith("ignored: not a regular file")
    for cell in [*rows[LONG].values(), *log]:
        assert cell[:1] not in ("=", "+", "-", "@"), cell


def test_the_gradebook_states_the_limits_in_force(batch):
    limits = _rows(batch["out"])["honest"]["limits"]
    assert "sandbox: bwrap" in limits and "seccomp" in limits and "prlimit" in limits
    if os.geteuid() == 0:
        assert "as uid" in limits and ("cgroup" in limits or "RLIMIT_NPROC" in limits)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_an_attack_earns_nothing(batch, attack):
    row = _rows(batch["out"])[attack]
    assert row["total"] == "0", (attack, row)
    assert row["status"] not in ("refused", "not-graded", "tampered")   # graded like any notebook


def test_a_constant_measurement_is_told_why_it_earns_nothing(batch):
    feedback = (batch["out"] / "feedback" / "constant_measurement.md").read_text()
    assert "not a number from the range" in feedback


def test_honest_submissions_keep_full_marks(batch):
    rows = _rows(batch["out"])
    for name in ("honest", "victim", "abuse"):
        assert (rows[name]["total"], rows[name]["max_total"]) == ("7", "7"), rows[name]
    assert rows["blank"]["total"] == "0"


def test_resource_abuse_is_stopped(batch):
    details = _rows(batch["out"])["abuse"]["details"]
    assert "big.bin" not in details
    feedback = (batch["out"] / "feedback" / "abuse.md").read_text()
    assert "✓" in feedback


def test_nothing_outside_the_sandbox_changed(batch):
    subs = batch["subs"]
    assert {p.name: p.read_bytes() for p in subs.iterdir() if p.is_file()} == batch["before"], "a submission was changed"
    assert {p: p.read_bytes() for p in batch["package"]} == batch["package"], "the grader was changed"
    assert not (Path(sys.prefix) / "tampered.pth").exists()
    assert not Path("/outside.txt").exists()
    assert (batch["out"] / "gradebook.csv").read_text() == batch["gradebook"], "the gradebook changed after grading"
    assert "FORGED" not in batch["gradebook"]
    assert sorted(p.name for p in batch["out"].iterdir()) == ["collection.csv", "feedback", "gradebook.csv", "marking"]


def test_no_process_outlives_its_sandbox(batch):
    for pid in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert b"FORGE_LATER_MARKER" not in cmdline and b"sleep\x0060" not in cmdline


def test_learner_messages_are_trimmed_labelled_and_leak_nothing(batch):
    feedback = (batch["out"] / "feedback" / "reach_classmates.md").read_text()
    assert "[from your code] LEAK" in feedback
    assert "x" * 400 not in feedback
    assert "hidden-test" not in feedback and "grade_task" not in feedback
    assert "victim" not in feedback and "book.grade" not in feedback


def test_a_seed_is_drawn_per_request_and_hidden_test_sources_stay_out():
    request = sources.hidden_tests(SOURCE_DIR / "ex04_building_resnets.md")[1]["request"]
    assert request == {"check": "check_cifar_resnet_parameters", "names": ["cifar_resnet_parameters"],
                       "thorough": True}
    # a learner who knew the public cases still fails on the seed's
    table = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}
    answer = protocol.answer(dict(request, seed=12345), {"cifar_resnet_parameters": table.__getitem__})
    assert not protocol.judge(dict(request, seed=12345), answer, "t")


def test_no_sandbox_means_no_grading_unless_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "unavailable_reason", lambda: "bubblewrap (`bwrap`) is not installed")
    (tmp_path / "subs").mkdir()
    assert cli.main([str(tmp_path / "subs"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no sandbox" in err and "apt-get install bubblewrap" in err and "--unsafe-no-sandbox" in err
    assert not (tmp_path / "out").exists()


def test_unsafe_mode_still_judges_outside_the_kernel(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    nbformat.write(_notebook([ATTACKS["patch_checks"]]), subs / "cheat.ipynb")
    nbformat.write(_notebook([], solved=True), subs / "honest.ipynb")
    assert cli.main([str(subs), "--out", str(out), "--quiet", "--unsafe-no-sandbox", *LIMITS]) == 0
    rows = _rows(out)
    assert rows["cheat"]["total"] == "0" and rows["honest"]["total"] == "7"


# --------------------------------------------------------------------------- the grader's own limits, unit by unit

def test_a_write_to_a_sandbox_that_stops_reading_ends_at_its_deadline():
    read, write = os.pipe()
    stream = os.fdopen(write, "wb")
    started = time.monotonic()
    assert exchange._write_with_deadline(stream, b"x" * 10_000_000, started + 1) is False
    assert time.monotonic() - started < 3
    stream.close(), os.close(read)


def test_the_reader_holds_a_bounded_number_of_lines():
    read, write = os.pipe()
    lines = exchange._Lines(os.fdopen(read, "rb"))
    writer = os.fdopen(write, "wb")
    import threading

    threading.Thread(target=lambda: [writer.write(b'{"n": 1}\n' * 1000), writer.flush()], daemon=True).start()
    time.sleep(0.5)
    assert lines.queue.qsize() <= 4            # the sandbox waits; the grader's memory does not grow
    assert lines.get(time.monotonic() + 1) == {"n": 1}
    lines.close()


def test_a_forged_padding_is_refused_before_any_allocation():
    from book.exercises import ex04
    import torch

    x = torch.zeros(8, 4, 40)
    conv = {"type": "Conv1d", "weight": {"tensor": {"shape": [4, 4, 1], "kind": "float", "data": [0.0] * 16}}, "bias": None,
            "stride": [1]}
    for padding in ([2**40], [-1], ["same"], [1.5], 2**40):
        assert ex04._rebuild_shortcut([dict(conv, padding=padding)], x) is None
    assert ex04._rebuild_shortcut([dict(conv, stride=[10**9], padding=[0])], x) is None
    assert ex04._rebuild_shortcut([dict(conv, padding=[0])], x).shape == (8, 4, 40)


def test_a_deep_tree_is_removed_without_recursion(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY)
    for _ in range(1500):
        os.mkdir("d", dir_fd=fd)
        fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
    os.close(fd)
    remove_tree(tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_each_report_is_written_as_soon_as_it_is_judged(tmp_path, monkeypatch):
    """When the grader itself dies on the second submission, the first one's row and feedback are on disk."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    for name in ("a", "b"):
        nbformat.write(_notebook([]), subs / f"{name}.ipynb")
    calls = []

    def fake(sub, *args, **kwargs):
        calls.append(sub.name)
        if len(calls) == 2:
            raise SystemExit("the grader died")         # not an Exception: the batch really stops
        return SubmissionResult(sub.name, sub.original, "ex04_building_resnets", "ok")

    monkeypatch.setattr(cli, "grade_submission", fake)
    with pytest.raises(SystemExit):
        cli.grade_folder(subs, GradeConfig(out=out, exercise="ex04", progress=False, sandbox=False))
    assert set(_rows(out)) == {"a"} and (out / "feedback" / "a.md").exists()


def test_names_are_cut_in_bytes():
    name = collect._safe("=" + "漢" * 62 + "x" * 40)
    assert len(name.encode()) <= collect.NAME_BYTES and name.startswith("漢")
    assert reports._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and reports._cell("@SUM(1)") == "'@SUM(1)"
