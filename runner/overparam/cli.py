"""The `overparam` command: run, verify-all, validate, list, schema.

Exit codes: 0 the checks support every stated verdict, 1 they do not, 2 bad input (spec, data, paths: one located
line per problem), 3 a fault of the machine or the run store (one line naming the path and what
to do; `overparam --debug ...` shows the traceback), 130 / 143 / 129 interrupted by Ctrl-C / SIGTERM /
SIGHUP (the group in training is checkpointed first; what was kept is said).
"""

from __future__ import annotations

import functools
import json
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from overparam.checkpoint import DEFAULT_EVERY_S, CheckpointedInterrupt, stopping_signals_interrupt
from overparam.errors import EnvironmentFault, OverparamError

# The commands import the rest (and torch, seconds to load) when they run: `--help` is instant.
if TYPE_CHECKING:
    from overparam.session import Options, Outcome, Session

ExecutorKind = Literal["local", "ray"]

EPILOG = (
    "Exit codes: 0 every spec's stated verdict is current; 1 one is out of date; 2 bad input (one located line per problem); "
    "3 a fault of the machine, the run store, a checkpoint or a record; 130 / 143 / 129 stopped by Ctrl-C / SIGTERM / SIGHUP "
    "(the group in training is checkpointed first). "
    "Environment: OVERPARAM_DATA, the folder of the UCI batch*.dat files; OVERPARAM_MNIST, the folder of the MNIST IDX files; "
    "XDG_CACHE_HOME, where downloads are cached."
)
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Verify the claims of Arora, Cohen & Hazan (ICML 2018) from YAML specs.",
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,  # click's plain help: no panels, no "<list[Path]>" type noise
)
# No emoji codes: `--device cuda:abc:` must print as typed, not as a picture.
out = Console(soft_wrap=True, emoji=False)
err = Console(stderr=True, soft_wrap=True, emoji=False)

F = TypeVar("F", bound=Callable[..., Any])


def _version(shown: bool) -> None:
    if shown:
        from overparam import __version__

        out.print(f"overparam {__version__}", markup=False, highlight=False)
        raise typer.Exit(0)


@app.callback()
def options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of a fault (exit 3); anywhere on the line")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")] = False,
) -> None:
    """Verify the claims of Arora, Cohen & Hazan (ICML 2018) from YAML specs."""
    ctx.obj = {"debug": debug}


def user_errors(command: F) -> F:
    """User errors become their lines on stderr and exit 2, faults of the machine or the store
    exit 3, never a traceback (but with --debug); Ctrl-C says what was kept."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with stopping_signals_interrupt():
                return command(*args, **kwargs)
        except EnvironmentFault as fault:
            _fault(fault.lines, _context(args, kwargs))
        except OSError as error:  # the disk, a permission: wherever it happens
            where = f"{error.filename}: " if error.filename else ""
            _fault((f"{where}{error.strerror or error}; check the path, its permissions and the free disk space",), _context(args, kwargs))
        except OverparamError as error:
            for line in error.lines:
                err.print(line, markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except CheckpointedInterrupt as interrupt:
            err.print(
                f"interrupted ({_signal_name(interrupt.signum)}): finished groups of runs are in the run store, and the group in training was kept: {interrupt.kept}; rerun to continue from there",
                markup=False,
            )
            raise typer.Exit(128 + interrupt.signum) from None
        except KeyboardInterrupt as interrupt:
            signum = getattr(interrupt, "signum", signal.SIGINT)
            err.print(f"interrupted ({_signal_name(signum)}): every finished group of runs is in the run store; rerun to continue from there", markup=False)
            raise typer.Exit(128 + signum) from None

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature; mypy sees a new one


def _signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def _context(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return next((a for a in (*args, *kwargs.values()) if hasattr(a, "find_root")), None)  # typer passes its click Context


def _fault(lines: tuple[str, ...], context: Any) -> None:
    """Exit 3 with the fault's lines; the traceback too under `overparam --debug` (read from the
    command's context, which commands that can fault take as their first parameter)."""
    if context is not None and (context.find_root().obj or {}).get("debug"):
        err.print_exception()
    for line in lines:
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(3) from None


SpecPaths = Annotated[list[Path], typer.Argument(help="spec files, folders of them, or spec ids (looked up in ./specs)", show_default=False, metavar="SPEC")]
ProfileOpt = Annotated[str | None, typer.Option("--profile", help="a named profile of the spec (e.g. paper)", metavar="NAME")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, or cuda / cuda:N where present", metavar="DEVICE")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="folder with the UCI batch*.dat files", metavar="DIR")]
FreshOpt = Annotated[bool, typer.Option("--fresh", help="ignore the run store: train every run again", metavar="")]
StoreOpt = Annotated[Path, typer.Option("--store", help="the run store (SQLite)", metavar="FILE")]
ReportsOpt = Annotated[Path, typer.Option("--reports", help="where reports are written", metavar="DIR")]
SpecsDirOpt = Annotated[Path, typer.Option("--specs", help="folder of spec files", metavar="DIR")]
JobsOpt = Annotated[int, typer.Option("--jobs", min=1, max=1024, help="worker processes (or Ray tasks) training groups of runs at once, 1–1024", metavar="N")]
ExecutorOpt = Annotated[ExecutorKind, typer.Option("--executor", help="local (this machine) or ray (pip install 'overparam\\[ray]')", metavar="local|ray")]
CheckpointOpt = Annotated[
    float,
    typer.Option(
        "--checkpoint-every",
        min=1.0,
        help="seconds between checkpoints of a group in training, at least 1 (a kill loses at most this)",
        metavar="SECONDS",
    ),
]
StoredOnlyOpt = Annotated[
    bool,
    typer.Option(
        "--stored-only", help="train nothing: report from the run store (opened read-only), and stop (exit 2) if it lacks a run", metavar=""
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON on stdout (the progress and lines go to stderr)", metavar="")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="with --executor ray: an existing cluster, e.g. ray://head:10001", metavar="URL")]


@app.command()
@user_errors
def run(
    ctx: typer.Context,
    specs: SpecPaths,
    profile: ProfileOpt = None,
    device: DeviceOpt = "cpu",
    data_dir: DataDirOpt = None,
    fresh: FreshOpt = False,
    store: StoreOpt = Path(".overparam/runs.sqlite"),
    reports: ReportsOpt = Path("reports"),
    jobs: JobsOpt = 1,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    checkpoint_every: CheckpointOpt = DEFAULT_EVERY_S,
    stored_only: StoredOnlyOpt = False,
) -> None:
    """Run specs, check their claims, write reports/<id>.md.

    Example: overparam run l4_depth --profile paper --store reports/paper-runs.sqlite --stored-only"""
    from overparam.executors import make_executor
    from overparam.session import Options, Session
    from overparam.specload import load_spec

    options = Options(store, reports, profile, _checked_device(device), data_dir, fresh, checkpoint_every, stored_only)
    specs = _spec_arguments(specs)
    _distinct_ids([(path, load_spec(path, profile)) for path in specs])  # every spec is checked before anything trains
    _checked_stored_only(store, stored_only, fresh)  # before _checked_outputs, which creates a missing store
    _checked_outputs(store, reports, stored_only)
    session = Session(executor=make_executor(executor, jobs, address))
    outcomes = [_verify_one(path, options, session) for path in specs]
    raise typer.Exit(0 if all(o.passed for o in outcomes) else 1)


@app.command("verify-all")
@user_errors
def verify_all(
    ctx: typer.Context,
    specs_dir: SpecsDirOpt = Path("specs"),
    profile: ProfileOpt = None,
    device: DeviceOpt = "cpu",
    data_dir: DataDirOpt = None,
    fresh: FreshOpt = False,
    store: StoreOpt = Path(".overparam/runs.sqlite"),
    reports: ReportsOpt = Path("reports"),
    jobs: JobsOpt = 1,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    checkpoint_every: CheckpointOpt = DEFAULT_EVERY_S,
    stored_only: StoredOnlyOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run every spec in a folder, then write the index reports/README.md.

    Example: overparam verify-all --jobs 2"""
    from overparam.executors import make_executor
    from overparam.progress import InvocationPace
    from overparam.report import write_index
    from overparam.session import Options, Session
    from overparam.specload import check_all_profiles

    paths = _spec_files(specs_dir)
    specs = [check_all_profiles(path) for path in paths]
    _distinct_ids(list(zip(paths, specs)))
    if profile and not any(profile in spec.profiles for spec in specs):
        raise OverparamError(f"{specs_dir}: no spec has a profile {profile!r}; drop --profile or add it under a spec's profiles")
    _checked_stored_only(store, stored_only, fresh)  # before _checked_outputs, which creates a missing store
    _checked_outputs(store, reports, stored_only)
    session = Session(executor=make_executor(executor, jobs, address))
    for spec in specs:
        if profile and profile not in spec.profiles:  # theory specs and maps: nothing to run at another budget
            err.print(f"[dim]{spec.id}: skipped (no profile {profile!r})[/]")
    chosen = [(path, spec) for path, spec in zip(paths, specs) if not profile or profile in spec.profiles]
    pace = InvocationPace([(spec.id, type(spec).__name__, _declared(path, profile)) for path, spec in chosen])
    err.print(pace.opening_line(), highlight=False)
    outcomes = []
    for path, spec in chosen:
        options = Options(store, reports, profile, _checked_device(device), data_dir, fresh, checkpoint_every, stored_only)
        outcomes.append(_verify_one(path, options, session, err if as_json else out))
        last = outcomes[-1]
        err.print(pace.done(spec.id, last.wall_s, last.trained, last.cached), highlight=False)
    index = write_index(specs, reports)
    if as_json:
        sys.stdout.write(json.dumps([_outcome_json(o, profile) for o in outcomes], indent=1, ensure_ascii=False) + "\n")
    else:
        _summary(outcomes)
        out.print(f"index: {index}", markup=False)
    raise typer.Exit(0 if all(o.passed for o in outcomes) else 1)


def _outcome_json(outcome: Outcome, profile: str | None) -> dict[str, Any]:
    """A claim's outcome as data: its headline, each statement, each check (the README's JSON section)."""
    judgement = outcome.judgement
    return {
        "id": outcome.spec.id,
        "profile": profile or "default",
        "headline": judgement.status,
        "verdict_current": judgement.current,
        "why": judgement.why,
        "statements": [{"aspect": s.aspect or "", "says": s.says, "status": s.status, "key": s.key()} for s in judgement.statements],
        "checks": [
            {
                "statement": c.statement,
                "passed": c.passed,
                "role": c.role,
                "decides": c.decides,
                "evidence": c.evidence,
                "fragile": c.stability.fragile if c.stability else None,
                "chaotic": c.stability.chaotic if c.stability else None,
            }
            for c in outcome.checks
        ],
        "report": str(outcome.report),
        "runs_trained": outcome.trained,
        "runs_from_store": outcome.cached,
    }


@app.command()
@user_errors
def validate(specs: SpecPaths) -> None:
    """Check spec files (and every profile in them); print every problem as file:line:col.

    Example: overparam validate specs/"""
    from overparam.specload import check_all_profiles

    problems: list[str] = []
    specs = _spec_arguments(specs)
    for path in specs:
        try:
            check_all_profiles(path)
        except OverparamError as error:
            problems.extend(error.lines)
    if problems:
        raise OverparamError(*problems)
    out.print(f"{len(specs)} spec{'s' if len(specs) != 1 else ''} valid")


@app.command("list")
@user_errors
def list_claims(specs_dir: SpecsDirOpt = Path("specs"), reports: ReportsOpt = Path("reports"), as_json: JsonOpt = False) -> None:
    """A table of the claims in the specs folder; piped, one tab-separated line per claim, whole.

    Example: overparam list | cut -f1"""
    from overparam.specload import load_spec

    columns = ("id", "group", "title", "verdict", "models", "checks", "profiles")
    rows, specs, paths = [], [], {}
    for path in _spec_files(specs_dir):
        spec = load_spec(path)
        specs.append(spec)
        paths[spec.id] = path
        rows.append((spec.id, spec.group, spec.title, spec.verdict.status, spec.listing(), str(len(spec.checks)), ", ".join(spec.profiles) or "—"))
    if as_json:  # each claim with what its last reports say (reports/<id>[-profile].json), where they exist
        from overparam.report import read_record, report_files

        claims = []
        for row in rows:
            spec = next(spec for spec in specs if spec.id == row[0])
            records = {}
            for name in (None, *spec.profiles):
                record = read_record(report_files(reports, spec.id, name)[0].with_suffix(".json"))
                if record is not None:
                    records[name or "default"] = {k: getattr(record, k) for k in ("headline", "budget", "statements", "verdict_current", "why", "checks", "date", "commit")}
            claims.append({**dict(zip(columns, row)), "checks": len(spec.checks), "profiles": list(spec.profiles), "file": str(paths[spec.id]), "reports": records})
        sys.stdout.write(json.dumps(claims, indent=1, ensure_ascii=False) + "\n")
        return
    if not out.is_terminal:  # for cut, grep and scripts: nothing cut to the width of a terminal that is not there
        sys.stdout.write("".join("\t".join(row) + "\n" for row in (columns, *rows)))
        return
    table = Table(title="claims")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*map(escape, row))  # a title or model name is text, never rich markup
    out.print(table)


@app.command()
@user_errors
def schema(
    kind: Annotated[str | None, typer.Option("--kind", help="one kind's schema: regression, convnet, theory or map", show_default=False)] = None,
) -> None:
    """Print the JSON Schema of a spec (regression, or `experiment:` convnet, theory or map): what
    `validate` accepts, with the rules JSON Schema cannot state listed in words under `x-rules`.

    Example: overparam schema --kind map > map.schema.json"""
    from overparam.registry import KINDS
    from overparam.schema import kind_schema, published_schema

    if kind is not None and kind not in KINDS:
        raise OverparamError(f"--kind {kind!r}: no such kind; kinds are {', '.join(KINDS)}")
    document = published_schema() if kind is None else kind_schema(kind)
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _verify_one(path: Path, options: Options, session: Session, say: Console = out) -> Outcome:
    from overparam.pipeline import verify
    from overparam.progress import RichProgress

    outcome = verify(path, options, session, RichProgress(err))
    judgement = outcome.judgement
    current = "[green]✓[/]" if outcome.passed else "[red]✗ out of date[/]"
    source = f"{outcome.trained} runs trained, {outcome.cached} from the run store" if outcome.trained + outcome.cached else "probe"
    say.print(f"{current} {outcome.spec.id}: {judgement.status} ({source}, {outcome.wall_s:.1f} s) → {escape(str(outcome.report))}", highlight=False)
    for warning in outcome.warnings:
        err.print(f"[yellow]warning[/] {escape(f'{path}: {warning}')}", highlight=False)
    # A claim check that fails where the verdict says so is evidence, not a failure: listed only when the run fails.
    failing = [index for index, check in enumerate(outcome.checks) if not check.passed and not outcome.passed]
    if not outcome.passed:
        say.print(f"  [red]✗[/] {escape(f'{path}: verdict: {judgement.why}')}", highlight=False)
    for index in failing:
        check = outcome.checks[index]
        say.print(f"  [red]✗[/] {escape(f'{outcome.located.get(index, path)}: checks[{index}]: {check.statement}: {check.evidence}')}", highlight=False)
    return outcome


def _distinct_ids(specs: list[tuple[Path, Any]]) -> None:
    """Two specs with one id would write one report over the other: refused, naming both files."""
    first: dict[str, Path] = {}
    problems = []
    for path, spec in specs:
        if spec.id in first and first[spec.id].resolve() != path.resolve():
            problems.append(f"{path}: id {spec.id!r} is already the id of {first[spec.id]}; give each spec its own id")
        first.setdefault(spec.id, path)
    if problems:
        raise OverparamError(*problems)


def _declared(path: Path, profile: str | None) -> int:
    from overparam.specload import load_spec

    return load_spec(path, profile).declared_run_steps()


def _summary(outcomes: list[Outcome]) -> None:
    table = Table(title="verify-all")
    for column in ("claim", "spec's verdict", "headline", "checks", "report"):
        table.add_column(column)
    for o in outcomes:
        status = "[green]current[/]" if o.passed else "[red]out of date[/]"
        verdict = o.judgement.status
        table.add_row(o.spec.id, status, verdict, f"{sum(c.passed for c in o.checks)}/{len(o.checks)}", escape(str(o.report)))
    out.print(table)


def _spec_arguments(arguments: list[Path], specs_dir: Path = Path("specs")) -> list[Path]:
    """Each argument as spec files: a file as it is, a folder as its *.yaml, and a name that is no
    path as the spec of that id in `specs_dir`."""
    paths: list[Path] = []
    ids: dict[str, Path] | None = None
    for argument in arguments:
        if argument.is_dir():
            paths += _spec_files(argument)
        elif argument.exists() or argument.suffix in (".yaml", ".yml") or len(argument.parts) > 1:
            paths.append(argument)  # a file, or what the loader will say is missing
        else:
            ids = ids if ids is not None else _ids_in(specs_dir)
            if str(argument) not in ids:
                raise OverparamError(f"{argument}: no such spec file, folder or id in {specs_dir}/; ids are {', '.join(sorted(ids)) or 'none'}")
            paths.append(ids[str(argument)])
    return paths


def _ids_in(folder: Path) -> dict[str, Path]:
    """id -> file of every spec in `folder` (a spec that does not load keeps its file name as its id)."""
    from overparam.yamlpos import load_yaml

    found: dict[str, Path] = {}
    for path in _spec_files(folder) if folder.is_dir() else []:
        try:
            found[str(load_yaml(path)[0].get("id", path.stem))] = path
        except OverparamError:
            found[path.stem] = path
    return found


def _spec_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise OverparamError(f"{folder}: no such folder of specs; pass --specs DIR")
    paths = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if not paths:
        raise OverparamError(f"{folder}: holds no *.yaml specs")
    return paths


def _checked_outputs(store: Path, reports: Path, stored_only: bool) -> None:
    """The store and the reports folder, checked before anything trains (not after an hour of it)."""
    from overparam.atomic import write_whole
    from overparam.store import RunStore

    if reports.exists() and not reports.is_dir():
        raise OverparamError(f"--reports {reports}: a file, not a folder; pass the folder reports go to")
    if store.is_dir():
        raise OverparamError(f"--store {store}: a folder, not a file; pass the run store's file, e.g. {store / 'runs.sqlite'}")
    RunStore(store, read_only=stored_only).close()  # a damaged, foreign or unwritable store: exit 3 now
    probe = reports / ".overparam-writable"
    write_whole(probe, lambda partial: partial.write_text(""))
    probe.unlink()


def _checked_stored_only(store: Path, stored_only: bool, fresh: bool) -> None:
    if stored_only and fresh:
        raise OverparamError("--stored-only and --fresh: the one reads every run from the store, the other trains every run; pass one")
    if stored_only and not store.is_file():
        raise OverparamError(f"--store {store}: no such run store, and --stored-only trains nothing; pass the store that holds the runs")


def _checked_device(device: str) -> str:
    import torch

    if device == "cpu":
        return device
    if re.fullmatch(r"cuda(:\d{1,3})?", device):
        if not torch.cuda.is_available():
            raise OverparamError(f"--device {device}: no CUDA device here; use --device cpu")
        return device
    raise OverparamError(f"--device {device!r}: unknown device; use cpu, cuda or cuda:N (N a device number)")


def main() -> None:
    # --debug belongs to the whole command, wherever it is typed: click reads it before the subcommand only.
    args = sys.argv[1:]
    if "--debug" in args[1:]:
        args = ["--debug", *(a for a in args if a != "--debug")]
    app(args=args, prog_name="overparam")
