"""One process may train several times (a notebook, the test suite, a sweep).

accelerate keeps its state (mixed precision included) in a process-wide singleton and refuses an
``Accelerator`` whose precision differs from the first one's. Each training here is a complete,
single-process run, so it starts from a fresh state instead of inheriting the previous run's.

accelerate has no public way to forget that state: this module is the one place that calls its
private ``AcceleratorState._reset_state`` / ``GradientState._reset_state`` (what accelerate's own
test utilities call). They exist throughout :data:`ACCELERATE_RANGE`, the range
``pyproject.toml`` declares; a version without them is refused with a clear error instead of an
``AttributeError`` from inside a training run.
"""

from __future__ import annotations

from o1_retriever.errors import DependencyError

#: the accelerate versions this module is known to work with (as pyproject.toml declares them;
#: tests/test_dependencies.py checks the two agree and that the installed version is inside)
ACCELERATE_RANGE = ">=0.34,<2"


def fresh_accelerator_state() -> None:
    """Forget accelerate's process-wide state so the next ``Accelerator`` sets its own precision."""
    import accelerate
    from accelerate.state import AcceleratorState, GradientState

    if not all(callable(getattr(cls, "_reset_state", None)) for cls in (AcceleratorState, GradientState)):
        raise DependencyError(
            f"accelerate {accelerate.__version__} has no AcceleratorState/GradientState._reset_state, which training uses "
            f"to start each run from a fresh state: install accelerate{ACCELERATE_RANGE}"
        )
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
