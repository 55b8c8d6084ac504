"""What a grading run is given and what it finds: its configuration, each submission's result, and the text rules
of every report (a learner's words are cut, put on one line and escaped before any report shows them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .collect import SOURCE_DIR
from .sandbox import Limits
from .verdicts import JudgeLimits

__all__ = ["GradeConfig", "TaskResult", "WrittenAnswer", "SubmissionResult", "STATUS_ORDER"]

STATUS_ORDER = ["grader-error", "refused", "invalid-notebook", "too-large", "no-notebook", "unknown-exercise", "wrong-exercise",
                "not-graded", "tampered", "rejected", "timeout", "kernel-crashed", "cell-timeout", "syntax-error", "cell-errors", "ok"]


@dataclass
class GradeConfig:
    """Limits and locations for a grading run."""

    out: Path                                  # every file the grader writes goes under here
    hidden_tests: Path = SOURCE_DIR            # folder of exNN_*.md sources (or one source file)
    exercise: str | None = None                # e.g. "ex04_building_resnets"; None: read from each notebook
    timeout: float = 300.0                     # seconds per submission: its cells and the hidden tests together
    cell_timeout: float = 60.0                 # seconds per notebook cell
    test_timeout: float = 60.0                 # seconds per hidden test
    max_output_chars: int = 100_000            # output kept per cell; the rest is dropped while it runs
    max_notebook_bytes: int = 20_000_000       # larger files are not run
    gradescope: bool = False                   # also write Gradescope results.json files
    progress: bool = True                      # a tqdm progress bar over the batch
    sandbox: bool = True                       # False only with --unsafe-no-sandbox (mode "none")
    limits: Limits = field(default_factory=Limits)
    mode: str = "bwrap"                        # "bwrap", "user" (root, no bubblewrap: Gradescope) or "none"
    jobs: int = 1                              # submissions graded at once, each in its own sandbox
    judge_limits: JudgeLimits = field(default_factory=JudgeLimits)   # the judges' own process, per submission

    def __post_init__(self):
        if not self.sandbox:
            self.mode = "none"


@dataclass
class TaskResult:
    task: int
    title: str
    points: float
    max_points: float
    message: str


@dataclass
class WrittenAnswer:
    """A written answer: collected from the notebook's file, never scored by the grader."""

    task: int
    answer: str                                  # its id, e.g. "3b"
    title: str
    points: float                                # the points a person awards when marking it
    text: str | None                             # the learner's words; None when none were written
    rubric: str = ""


@dataclass
class SubmissionResult:
    name: str
    path: str
    exercise: str
    status: str
    tasks: list[TaskResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    written: list[WrittenAnswer] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)   # the sandbox and the limits that were in force

    @property
    def review_total(self) -> float:
        """The points that a person awards for the written answers."""
        return sum(w.points for w in self.written)

    @property
    def total(self) -> float:
        return sum(t.points for t in self.tasks)

    @property
    def max_total(self) -> float:
        return sum(t.max_points for t in self.tasks)


# --------------------------------------------------------------------------- text a report may show

NOTE_CHARS = 300          # a learner's message is cut to this length in a note
FIELD_CHARS = 4000        # learner-influenced text kept per field of a report


def _points(x: float) -> str:
    return f"{x:g}"


def _learner_text(text, limit: int = NOTE_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + " …"


def _md(text, limit: int = FIELD_CHARS) -> str:
    """Text for a Markdown report: one line, no HTML, at most ``limit`` characters."""
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[:limit] + " … [cut]"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
