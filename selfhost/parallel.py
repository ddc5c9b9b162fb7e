"""Previews of several stacks at once: independent stacks in forked worker processes, as many as there are cores,
results handed back in the order asked for, whatever finishes first.

A worker is forked after the CLI's own imports and before any Pulumi program has run (no SDK threads or event
loops exist yet; a process with other threads previews one stack after another instead), so it starts warm and
imports only the provider SDKs its stacks declare. Stacks are grouped by the platforms they stand on and the groups
spread over the workers, so each provider SDK (pulumi_gcp alone takes about a second to import) is loaded by as
few workers as possible. A stack whose preview fails comes back as a `StackFailure`, never taking the others with
it.
"""

from __future__ import annotations

import os
import pickle
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context

from .preview import Preview, run_preview
from .project import Project, ProjectError, stack_config


@dataclass(frozen=True)
class StackFailure:
    """Why a stack could not be previewed: its config is invalid (`config`), its file is missing or malformed
    (`project`), the program raised (`program`, with the traceback), or, with `--base`, its preview at the base
    ref failed (`base`)."""

    kind: str
    message: str


def preview_stacks(project: Project, stacks: Sequence[str], workers: int | None = None,
                   on_done: Callable[[str], None] | None = None) -> Iterator[tuple[str, Preview | StackFailure]]:
    """Each stack's preview (or its failure), in the order of `stacks`. `workers`: processes to use (default:
    the cores this process may run on; 1, or a single stack, previews here, without forking). `on_done(stack)` is
    called as each finishes, in whatever order (a progress line)."""
    workers = min(workers or _cores(), len(stacks))
    # A fork copies only the forking thread: in a process with others (a test runner after earlier previews left
    # the SDK's thread pools running), a lock one of them held stays held in the child forever. The CLI forks
    # before any preview has run, with one thread.
    if workers <= 1 or not hasattr(os, "fork") or threading.active_count() > 1:
        for stack in stacks:
            result = _preview(project, stack)
            if on_done:
                on_done(stack)
            yield stack, result
        return
    done: dict[str, Preview | StackFailure] = {}
    # Fork, not spawn: a worker inherits the imports made so far instead of paying them again.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
        pending: dict[Future[list[tuple[str, bytes]]], list[str]] = {
            pool.submit(_preview_group, project, group): group for group in groups(project, stacks, workers)}
        for stack in stacks:
            while stack not in done:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    group = pending.pop(future)
                    for name, blob in _results(future, group):
                        done[name] = pickle.loads(blob)
                        if on_done:
                            on_done(name)
            yield stack, done.pop(stack)


def groups(project: Project, stacks: Sequence[str], workers: int) -> list[list[str]]:
    """The stacks split into at most `workers` lists: stacks on the same platforms together, each group given to
    the worker it adds least to (a stack weighs one, importing a platform's SDK there two), largest first."""
    by_platforms: dict[tuple[str, ...], list[str]] = {}
    for stack in stacks:
        by_platforms.setdefault(_platforms(project, stack), []).append(stack)
    loads = [0.0] * workers
    names: list[list[str]] = [[] for _ in range(workers)]
    imported: list[set[str]] = [set() for _ in range(workers)]
    for platforms, members in sorted(by_platforms.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        after = [loads[k] + len(members) + 2 * len(set(platforms) - imported[k]) for k in range(workers)]
        i = min(range(workers), key=lambda k: (after[k], k))
        loads[i], names[i], imported[i] = after[i], [*names[i], *members], imported[i] | set(platforms)
    return [group for group in names if group]


def _platforms(project: Project, stack: str) -> tuple[str, ...]:
    """The platforms a stack's targets stand on, from its config (no program run); () when it cannot tell."""
    try:
        from components.config import load_environment
        from components.targets.registry import kind_of

        config, secret_keys = stack_config(project, stack)
        env = load_environment(stack, config, set(secret_keys))
    except Exception:  # noqa: BLE001 - the preview itself reports what is wrong with the stack
        return ()
    return tuple(sorted({kind_of(t).platform for t in env.targets}))


def _preview(project: Project, stack: str) -> Preview | StackFailure:
    from components.schema import ConfigError

    try:
        return run_preview(project, stack)
    except ConfigError as exc:
        return StackFailure("config", str(exc))
    except ProjectError as exc:
        return StackFailure("project", str(exc))
    except Exception:  # noqa: BLE001 - one stack's failure is reported with the others' results
        return StackFailure("program", traceback.format_exc())


def _preview_group(project: Project, stacks: list[str]) -> list[tuple[str, bytes]]:
    """In a worker: each stack's result, pickled here so an unpicklable value fails as that stack's failure."""
    out = []
    for stack in stacks:
        result = _preview(project, stack)
        try:
            blob = pickle.dumps(result)
        except Exception:  # noqa: BLE001
            blob = pickle.dumps(StackFailure("program", traceback.format_exc()))
        out.append((stack, blob))
    return out


def _results(future: Future[list[tuple[str, bytes]]], group: list[str]) -> list[tuple[str, bytes]]:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a worker that died: its stacks fail, the rest go on
        failure = pickle.dumps(StackFailure("program", f"the worker previewing {', '.join(group)} failed: {exc!r}"))
        return [(name, failure) for name in group]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


