"""Hooks a caller (a worker, a notebook, the CLI) uses to follow and stop a run."""

from __future__ import annotations


class Callback:
    """Override what you need. ``should_stop`` is polled between epochs."""

    def on_phase_start(self, phase: str, trainer) -> None: ...

    def on_batch(self, phase: str, epoch: int, step: int, steps: int) -> None: ...

    def on_epoch_end(self, record: dict) -> None: ...

    def on_train_end(self, result) -> None: ...

    def should_stop(self) -> bool:
        return False


class CallbackList(Callback):
    def __init__(self, callbacks: list[Callback]):
        self.callbacks = list(callbacks)

    def on_phase_start(self, phase, trainer):
        for c in self.callbacks:
            c.on_phase_start(phase, trainer)

    def on_batch(self, phase, epoch, step, steps):
        for c in self.callbacks:
            c.on_batch(phase, epoch, step, steps)

    def on_epoch_end(self, record):
        for c in self.callbacks:
            c.on_epoch_end(record)

    def on_train_end(self, result):
        for c in self.callbacks:
            c.on_train_end(result)

    def should_stop(self):
        return any(c.should_stop() for c in self.callbacks)
