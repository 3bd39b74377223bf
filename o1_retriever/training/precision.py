"""One process may train several times (a notebook, the test suite, a sweep).

accelerate keeps its state (mixed precision included) in a process-wide singleton and refuses an
``Accelerator`` whose precision differs from the first one's. Each training here is a complete,
single-process run, so it starts from a fresh state instead of inheriting the previous run's.
"""

from __future__ import annotations


def fresh_accelerator_state() -> None:
    """Forget accelerate's process-wide state so the next ``Accelerator`` sets its own precision."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
