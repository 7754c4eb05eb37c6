"""`chimera demo`: the whole system on one machine with a simulated pool, until Ctrl-C
(run.py the orchestration, view.py what the terminal shows, follow.py where the figures
come from, receiver.py the webhook the demo's alert channel delivers to)."""

from chimera.demo.run import run_demo

__all__ = ["run_demo"]
