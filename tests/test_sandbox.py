"""The sandbox's mounts: the private /tmp never hides the course's own environment or package."""

from pathlib import Path

from book.sandbox import Sandbox, python_paths


def test_the_private_tmp_is_mounted_before_the_course_so_a_checkout_under_tmp_stays_visible(tmp_path):
    args = Sandbox(tmp_path)._argv(["python", "-c", "pass"], {})
    tmpfs = args.index("--tmpfs")
    assert args[tmpfs + 1] == "/tmp"
    for path in python_paths():
        bind = next(i for i in range(len(args) - 2) if args[i] == "--ro-bind" and args[i + 1] == str(path))
        assert bind > tmpfs, f"{path} is bound before the private /tmp, which would hide it when it lives under /tmp"


def test_python_paths_cover_the_interpreter_the_environment_and_the_package():
    import sys

    import book

    paths = python_paths()
    assert Path(book.__file__).resolve().parent in paths
    assert Path(sys.prefix).resolve() in paths
