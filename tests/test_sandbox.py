"""The sandbox's mounts: the private /tmp never hides the course's own environment or package."""

from pathlib import Path

from book.grading.sandbox import SCRATCH, Sandbox, python_paths


def test_the_private_tmp_is_mounted_before_the_course_so_a_checkout_under_tmp_stays_visible(tmp_path):
    args = Sandbox(b"{}")._bwrap_args({}, 0, None, python_paths())
    tmpfs = args.index("--tmpfs")
    assert args[tmpfs + 1] == SCRATCH and ["--symlink", f"{SCRATCH}/.tmp", "/tmp"] == args[tmpfs + 4:tmpfs + 7]
    for path in python_paths():
        bind = next(i for i in range(len(args) - 2) if args[i] == "--ro-bind" and args[i + 1] == str(path))
        assert bind > tmpfs, f"{path} is bound before the private /tmp, which would hide it when it lives under /tmp"


def test_the_sandbox_sees_the_learner_package_where_the_course_package_is(tmp_path):
    """Both sandboxes show the package without its exercise modules (the judges' references) at the package's path."""
    import book
    from book.grading.sandbox import learner_package, sandbox_sources

    package, copy = Path(book.__file__).resolve().parent, learner_package()
    assert copy in sandbox_sources() and package not in sandbox_sources()
    args = Sandbox(b"{}")._bwrap_args({}, 0, None, sandbox_sources())
    bind = args.index(str(copy))
    assert args[bind - 1] == "--ro-bind" and args[bind + 1].endswith(str(package).removeprefix("/tmp"))
    box = Sandbox(b"{}", mode="none")
    box.user, box.work = (65534, 65534), tmp_path      # as a root grader's "user" mode sets them
    prefix = box._reach([], [(copy, package)])
    assert prefix[:2] == ["unshare", "--mount"] and 'mount --bind -o ro "${1}" "${2}"' in prefix[7]
    assert prefix[-2:] == [str(copy), str(package)]
    many = box._reach([], [(copy, package)] * 6)       # twelve arguments: the tenth is ${10}, not $1 and a 0
    assert '"${10}"' in many[7] and '"$1"' not in many[7]


def test_python_paths_cover_the_interpreter_the_environment_and_the_package():
    import sys

    import book

    paths = python_paths()
    assert Path(book.__file__).resolve().parent in paths
    assert Path(sys.prefix).resolve() in paths


# --------------------------------------------------------------------------- the runner's pipes, from the learner's kernel

REACH = r"""
import json, os
mine = []
for fd in os.listdir('/proc/self/fd'):
    try:
        mine.append(os.readlink(f'/proc/self/fd/{fd}'))
    except OSError:
        pass
ancestors, pid = [], os.getppid()
while pid > 0:
    ancestors.append(pid)
    pid = int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])
opened = []
for pid in ancestors:
    for fd in ('0', '1', '2', '3', '4', '5', '6', '7'):
        for mode in ('rb', 'wb'):
            try:
                open(f'/proc/{pid}/fd/{fd}', mode).close()
                opened.append(f'{pid}/{fd}/{mode}')
            except OSError:
                pass
raise ValueError('REACH ' + json.dumps({'fds': [f for f in mine if f.startswith('pipe:')], 'ancestors': ancestors,
                                        'opened': opened[:10]}))
"""


def test_the_kernel_reaches_neither_the_runners_nor_bubblewraps_pipes():
    """The kernel holds only its own pipes, and opens no pipe of an ancestor (the runner, bubblewrap's init)
    through /proc: it cannot read the grader's seeds, stop the runner's reading, or write the grader's lines."""
    import json
    import os
    import sys

    import nbformat
    import pytest
    from nbformat.v4 import new_code_cell, new_notebook

    from book.grading.exchange import RUNNER, sandbox_env
    from book.grading.sandbox import unavailable_reason

    if unavailable_reason() is not None:
        pytest.skip(f"no sandbox: {unavailable_reason()}")
    notebook = nbformat.writes(new_notebook(cells=[new_code_cell(REACH)])).encode()
    with Sandbox(notebook) as box:
        box.prepare()
        env = sandbox_env(box.scratch_inside, box.tmp_inside)
        proc = box.start([sys.executable, "-m", RUNNER, f"{box.scratch_inside}/submission.ipynb",
                          "--timeout", "60"], env)
        grader_pipes = {f"pipe:[{os.fstat(stream.fileno()).st_ino}]" for stream in (proc.stdin, proc.stdout)}
        first = json.loads(proc.stdout.readline())
        proc.stdin.write(b'{"requests": []}\n')
        proc.stdin.flush()
        proc.communicate(timeout=60)
    (_, ename, evalue), = first["cells"]["errors"]
    report = json.loads(evalue.split("REACH ", 1)[1])
    assert report["opened"] == [], report
    assert len(report["ancestors"]) >= 2, report           # the runner, and bubblewrap's init above it
    # the kernel's own descriptors: none is the runner's stdin or its channel to the grader (not inherited)
    assert not grader_pipes & set(report["fds"]), (grader_pipes, report["fds"])
    assert any(link.startswith("pipe:") for link in report["fds"]), report["fds"]
