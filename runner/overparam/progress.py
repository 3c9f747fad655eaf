"""Progress on stderr while training: runs done, run-steps per second, time left. A live bar on
a terminal; elsewhere (a CI log, a file) one plain line every PLAIN_EVERY_S seconds, since rich
draws nothing there and an hour of silence looks like a hang."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

PLAIN_EVERY_S = 60.0


class RichProgress:
    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._steps_per_run = 1

    def begin(self, label: str, runs: int, run_steps: int) -> None:
        if runs == 0:
            self.console.print(f"[dim]{label}: every run came from the run store; nothing to train[/]")
            return
        self._steps_per_run = max(1, run_steps // runs)
        self.console.print(f"[dim]{label}: {runs:,} runs to train, {run_steps:,} run-steps[/]")
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
        self._done = self._resumed = 0
        self._label, self._total, self._said = label, run_steps, time.monotonic()

    def advance(self, run_steps: int, resumed: bool = False) -> None:
        """`resumed` run-steps were trained by an earlier process (a checkpoint's): done, but not
        at this process's pace, which they would inflate."""
        if self._bar is None or self._task is None:
            return
        self._done += run_steps
        if resumed:
            self._resumed += run_steps
        task = self._bar.tasks[0]
        rate = f"{self._trained / task.elapsed:,.0f}" if task.elapsed else "…"
        self._bar.update(self._task, completed=self._done / self._steps_per_run, rate=rate)
        if not self.console.is_terminal and time.monotonic() - self._said >= PLAIN_EVERY_S:
            self._said = time.monotonic()
            self.console.print(self._plain_line(task.elapsed or 0.0), markup=False, highlight=False)

    @property
    def _trained(self) -> int:
        return self._done - self._resumed

    def _plain_line(self, elapsed: float) -> str:
        speed = self._trained / elapsed if elapsed else 0.0
        left = f", about {(self._total - self._done) / speed / 60:.0f} min left" if speed else ""
        return f"{self._label}: {self._done / self._steps_per_run:.0f} of {self._total // self._steps_per_run} runs' steps done, {speed:,.0f} run-steps/s{left}"

    def end(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        self._bar = None
        self._task = None


class InvocationPace:
    """Where a many-spec invocation stands, one line after each spec: specs done, the declared
    run-steps behind it (Claim.declared_run_steps) and the time left, from the pace each kind of
    spec has kept so far in this invocation (a convnet step costs ~1000× a regression run-step,
    so one pace for all would mislead). A kind not yet timed is named rather than guessed. A spec
    whose runs came partly from the run store counts only the share it trained: a resumed
    invocation must not make the specs still to train look cheap."""

    def __init__(self, plan: list[tuple[str, str, int]]) -> None:
        self._plan = plan  # (spec id, kind, declared run-steps), in running order
        self._finished: dict[str, tuple[float, float]] = {}  # spec id → (wall s, share of its runs trained)
        self._start = time.monotonic()

    def opening_line(self) -> str:
        total = sum(steps for _, _, steps in self._plan)
        return f"verify-all: {len(self._plan)} specs, {total:,} declared run-steps (before refinement and one-ulp twins)"

    def done(self, spec_id: str, wall_s: float, trained: int = 1, cached: int = 0) -> str:
        """The line after `spec_id`, which took `wall_s` to train `trained` runs and fetch `cached`."""
        self._finished[spec_id] = (wall_s, trained / (trained + cached) if trained + cached else 0.0)
        finished = [entry for entry in self._plan if entry[0] in self._finished]
        left = [entry for entry in self._plan if entry[0] not in self._finished]
        elapsed = time.monotonic() - self._start
        line = f"verify-all: {len(finished)} of {len(self._plan)} specs done in {_duration(elapsed)}"
        if not left:
            return line
        estimate, untimed = self._time_left(finished, left)
        line += f"; about {_duration(estimate)} left at this invocation's pace"
        return line + (f" (not counting {', '.join(untimed)}: no spec of its kind timed yet)" if untimed else "")

    def _time_left(self, finished: list[tuple[str, str, int]], left: list[tuple[str, str, int]]) -> tuple[float, list[str]]:
        pace: dict[str, tuple[float, int]] = {}
        for spec_id, kind, steps in finished:
            spec_wall, share = self._finished[spec_id]
            if share == 0:  # all from the store: says nothing about the pace of training
                continue
            wall, counted = pace.get(kind, (0.0, 0))
            pace[kind] = (wall + spec_wall, counted + round(steps * share))
        estimate, untimed = 0.0, []
        for spec_id, kind, steps in left:
            wall, counted = pace.get(kind, (0.0, 0))
            if steps == 0:
                continue
            if counted == 0:
                untimed.append(spec_id)
            else:
                estimate += steps * wall / counted
        return estimate, untimed


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
