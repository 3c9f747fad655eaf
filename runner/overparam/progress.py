"""Rich progress on stderr while training: runs done, run-steps per second, time left."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RichProgress:
    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar: Progress | None = None
        self._task = None
        self._steps_per_run = 1

    def begin(self, label: str, runs: int, run_steps: int) -> None:
        if runs == 0:
            self.console.print(f"[dim]{label}: every run came from the run store; nothing to train[/]")
            return
        self._steps_per_run = max(1, run_steps // runs)
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("runs · {task.fields[rate]} run-steps/s"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._bar.start()
        self._task = self._bar.add_task(label, total=runs, rate="…")
        self._done = 0

    def advance(self, run_steps: int) -> None:
        if self._bar is None or self._task is None:
            return
        self._done += run_steps
        task = self._bar.tasks[0]
        rate = f"{self._done / task.elapsed:,.0f}" if task.elapsed else "…"
        self._bar.update(self._task, completed=self._done / self._steps_per_run, rate=rate)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        self._bar = None
        self._task = None
