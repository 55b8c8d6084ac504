"""The grader: ``python -m book.grade SUBMISSIONS --out OUT`` (:mod:`book.grade` calls :func:`book.grading.cli.main`).

Its modules follow a submission through the grader:

- :mod:`book.grading.collect`    find the submissions in a folder, and the exercise sources with their hidden tests
- :mod:`book.grading.sandbox`    a bubblewrap sandbox with resource limits, one per submission, never as root
- :mod:`book.grading.runner`     runs inside the sandbox: the notebook's cells, then the grader's requests
- :mod:`book.grading.exchange`   the grader's side of that run: start, send the requests, read, kill
- :mod:`book.grading.report`     the runner's report as one typed object, read and validated in one place
- :mod:`book.grading.judge`      one submission's row: its answers judged outside the sandbox
- :mod:`book.grading.verdicts`   the judges, in a child process of the grader with their own memory and time limits
- :mod:`book.grading.manifest`   the grader's own files as shipped (a hash of each), bytecode included
- :mod:`book.grading.results`    the run's configuration and results, and the text rules of every report
- :mod:`book.grading.gradebook`  the gradebook, the collection log, feedback and marking files
- :mod:`book.grading.gradescope` Gradescope's ``results.json`` and the autograder zip
- :mod:`book.grading.cli`        the batch (``--jobs``, the grader's own files watched) and the command line

This package imports nothing on import: the runner starts inside the sandbox as ``python -m book.grading.runner``
and loads only what it needs there.
"""
