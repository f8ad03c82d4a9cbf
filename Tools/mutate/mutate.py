#!/usr/bin/env python3
"""Mutation check of Ember's test suite.

Applies one small change ("mutant") at a time to a private copy of the package, rebuilds it and
runs the full test suite. A mutant is caught when a test fails, the process crashes or the run
times out; it survived when every test passes. See TESTING.md for the commands.

Two sources of mutants:
  curated   Tools/mutate/mutants.json: each names the promise it breaks, the file, an anchor text
            that must occur on exactly one line of that file, and the replacement of that text.
  automatic --auto N --seed S --files GLOB: operator mutants (arithmetic and comparison operators
            swapped, conditions negated, constants off by one, statements removed, returns replaced
            by a default) generated from the chosen files, N sampled with the seed.

Standard library only. The working tree is never modified: every mutant is applied to a copy
that is reused across the run (so rebuilds are incremental) and removed at the end, also on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CURATED = Path(__file__).resolve().parent / "mutants.json"
COPIED = ["Package.swift", "Package.resolved", "Sources", "Tests", "Examples", "Tools"]

CAUGHT, TIMEOUT, SURVIVED, NO_COMPILE, NOT_APPLICABLE = (
    "caught", "caught (timeout)", "survived", "does not compile", "not applicable")


@dataclass
class Mutant:
    id: str
    promise: str
    file: str
    anchor: str
    replacement: str
    equivalent: str | None = None  # why the change cannot be observed, when it cannot
    after: str | None = None        # for an anchor that repeats: a text on exactly one earlier line
    line: int | None = None         # automatic mutants: the 1-based line they were made from

    @property
    def target(self) -> str:
        parts = Path(self.file).parts
        return parts[1] if len(parts) > 2 and parts[0] == "Sources" else parts[0]


@dataclass
class Result:
    mutant: Mutant
    status: str
    seconds: float
    detail: str = ""


# ---------------------------------------------------------------------------------------------
# Curated mutants

def load_curated(path: Path = CURATED) -> list[Mutant]:
    data = json.loads(path.read_text())
    out = []
    seen = set()
    for entry in data["mutants"]:
        m = Mutant(id=entry["id"], promise=entry["promise"], file=entry["file"], anchor=entry["anchor"],
                   replacement=entry["replacement"], equivalent=entry.get("equivalent"), after=entry.get("after"))
        if m.id in seen:
            raise SystemExit(f"mutants.json: duplicate id {m.id}")
        seen.add(m.id)
        out.append(m)
    return out


def apply_mutant(m: Mutant, text: str) -> str | None:
    """The mutated file text, or None when the anchor does not pick exactly one line."""
    lines = text.split("\n")
    if m.line is not None:
        i = m.line - 1
        if i >= len(lines) or lines[i] != m.anchor:
            return None
        lines[i] = m.replacement
        return "\n".join(lines)
    start = 0
    if m.after is not None:
        marks = [i for i, line in enumerate(lines) if m.after in line]
        if len(marks) != 1:
            return None
        start = marks[0] + 1
    hits = [i for i, line in enumerate(lines) if i >= start and m.anchor in line]
    if m.after is not None:
        hits = hits[:1]  # the first occurrence after the mark
    if len(hits) != 1 or lines[hits[0]].count(m.anchor) != 1:
        return None
    i = hits[0]
    lines[i] = lines[i].replace(m.anchor, m.replacement)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Automatic mutants

STRING_RE = re.compile(r'"(?:\\.|[^"\\])*"')


def code_mask(lines: list[str]) -> list[str | None]:
    """Each line with comments and string literals blanked out (same length), or None for a line
    that is wholly comment, inside a block comment or a multi-line string, or a declaration
    attribute; mutants are only made where the mask keeps code."""
    out: list[str | None] = []
    in_block = False
    in_multiline = False
    for line in lines:
        stripped = line.strip()
        if in_multiline:
            if '"""' in line:
                in_multiline = False
            out.append(None)
            continue
        if in_block:
            if "*/" in line:
                in_block = False
            out.append(None)
            continue
        if stripped.startswith("/*"):
            in_block = "*/" not in stripped
            out.append(None)
            continue
        if stripped.startswith("//") or stripped.startswith("@") or stripped.startswith("#") or not stripped:
            out.append(None)
            continue
        if line.count('"""') % 2 == 1:
            in_multiline = True
            out.append(None)
            continue
        masked = STRING_RE.sub(lambda s: '"' + "_" * (len(s.group()) - 2) + '"', line)
        c = masked.find("//")
        if c >= 0:
            masked = masked[:c] + " " * (len(masked) - c)
        out.append(masked)
    return out


BINARY_SWAPS = [
    (" + ", " - "), (" - ", " + "), (" * ", " / "), (" / ", " * "),
    (" += ", " -= "), (" -= ", " += "), (" *= ", " /= "),
    (" < ", " <= "), (" <= ", " < "), (" > ", " >= "), (" >= ", " > "),
    (" == ", " != "), (" != ", " == "), (" && ", " || "), (" || ", " && "),
]
NUMBER_RE = re.compile(r"(?<![\w.$])(\d+(?:\.\d+)?(?:e-?\d+)?)(?![\w.])")
HEADER_RE = re.compile(r"^\s*(?:@\w+\s+)*(?:(?:public|private|fileprivate|internal|package|open|static|final|override|"
                       r"mutating|nonisolated|convenience)\s+)*(?:func|init|extension|struct|class|enum|protocol|subscript)\b")
CONDITION_RE = re.compile(r"^(\s*(?:\}\s*else\s+)?(?:if|guard|while)\s+)(.+?)(\s*(?:\{|else\s*\{).*)$")
DECLARATION_RE = re.compile(r"^\s*(?:(?:public|private|fileprivate|internal|package|open|static|final|override|"
                            r"mutating|nonisolated|lazy|weak|@\w+)\s+)*(?:let|var|func|init|deinit|case|default|"
                            r"return|throw|break|continue|import|struct|class|enum|protocol|extension|typealias|"
                            r"subscript|switch|if|guard|else|for|while|repeat|defer|do|catch)\b")
FUNC_RE = re.compile(r"\bfunc\b.*->\s*([^{]+?)\s*(?:where\b.*)?\{?\s*$")
DEFAULTS = [(re.compile(r"^Bool$"), ["false", "true"]), (re.compile(r"^(Int|Int64|Int32|UInt64|UInt32)$"), ["0"]),
            (re.compile(r"^(Double|Float)$"), ["0"]), (re.compile(r"^String$"), ['""']),
            (re.compile(r"^\[.*\]$"), ["[]"]), (re.compile(r".*\?$"), ["nil"])]


def balanced(s: str) -> bool:
    return s.count("(") == s.count(")") and s.count("[") == s.count("]") and s.count("{") == s.count("}")


def enclosing_return_type(lines: list[str], index: int) -> str | None:
    for j in range(index, -1, -1):
        if re.search(r"\bfunc\b", lines[j]):
            m = FUNC_RE.search(lines[j])
            return m.group(1).strip() if m else None
        if re.search(r"\b(init|var\s+\w+\s*:)", lines[j]) and lines[j].rstrip().endswith("{"):
            return None
    return None


def auto_candidates(rel: str, text: str) -> list[Mutant]:
    lines = text.split("\n")
    masks = code_mask(lines)
    out: list[Mutant] = []

    def add(i: int, kind: str, new: str) -> None:
        if new != lines[i]:
            out.append(Mutant(id=f"auto:{rel}:{i + 1}:{kind}:{len(out)}", promise=f"automatic {kind}",
                              file=rel, anchor=lines[i], replacement=new, line=i + 1))

    for i, (line, mask) in enumerate(zip(lines, masks)):
        if mask is None:
            continue
        stripped = mask.strip()
        if re.match(r"^\s*(precondition|assert|preconditionFailure|fatalError)\b", mask):
            # Only the condition of a precondition is mutated, never its message (masked anyway).
            pass
        header = bool(HEADER_RE.match(mask))  # generic constraints and default arguments: not code
        for old, new in ([] if header else BINARY_SWAPS):
            start = 0
            while (k := mask.find(old, start)) >= 0:
                add(i, f"{old.strip()}->{new.strip()}", line[:k] + new + line[k + len(old):])
                start = k + len(old)
        for mm in ([] if header else NUMBER_RE.finditer(mask)):
            lit = mm.group(1)
            if "[" in mask[:mm.start()] and mask[:mm.start()].rstrip().endswith("["):
                continue  # an index: off by one there mostly traps, which the suite catches trivially
            add(i, "const+1", line[:mm.start()] + f"({lit} + 1)" + line[mm.end():])
        cm = CONDITION_RE.match(mask)
        if cm and balanced(cm.group(2)) and "let " not in cm.group(2) and "case " not in cm.group(2):
            a, b = cm.start(2), cm.end(2)
            add(i, "negate", line[:a] + "!(" + line[a:b] + ")" + line[b:])
        if (not DECLARATION_RE.match(mask) and balanced(stripped) and not re.match(r"(super|self)\.init\b", stripped) and not stripped.startswith("}")
                and not stripped.endswith("{") and not stripped.endswith(",") and not stripped.startswith(".")
                and not stripped.endswith("in") and (re.search(r"[^=!<>]=[^=]", stripped) or stripped.endswith(")"))
                and i + 1 < len(lines) and not (masks[i + 1] or "").strip().startswith(".")):
            add(i, "remove", "")
        rm = re.search(r"\breturn\s+(\S.*?)\s*(\}?)\s*$", mask)
        if rm:
            rtype = enclosing_return_type(lines, i)
            if rtype:
                for pattern, values in DEFAULTS:
                    if pattern.match(rtype):
                        for v in values:
                            if rm.group(1) != v:
                                add(i, f"return->{v}", line[:rm.start(1)] + v + line[rm.end(1):])
                        break
    return out


def generate_auto(files: list[str], count: int, seed: int) -> list[Mutant]:
    paths: list[str] = []
    for pattern in files:
        paths += sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(pattern) if p.suffix == ".swift")
    candidates: list[Mutant] = []
    for rel in dict.fromkeys(paths):
        candidates += auto_candidates(rel, (ROOT / rel).read_text())
    if not candidates:
        raise SystemExit(f"no automatic mutants in {files}")
    rng = random.Random(seed)
    picked = rng.sample(candidates, min(count, len(candidates)))
    print(f"automatic: {len(candidates)} candidates in {len(set(paths))} files; sampled {len(picked)} with seed {seed}")
    return picked


# ---------------------------------------------------------------------------------------------
# Running

class Workspace:
    """A private copy of the package, with its own .build, reused across mutants. The working
    tree's .build is not copied: its Clang module cache records absolute paths, so a copied one
    fails to build."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="ember-mutate-"))
        try:
            for name in COPIED:
                src = ROOT / name
                if src.is_dir():
                    shutil.copytree(src, self.dir / name, symlinks=True,
                                    ignore=shutil.ignore_patterns(".build", "__pycache__", "*.pyc"))
                elif src.exists():
                    shutil.copy2(src, self.dir / name)
        except BaseException:
            self.remove()  # interrupted while copying: the caller has no workspace to clean up
            raise

    def remove(self) -> None:
        # SwiftPM starts compilers in process groups of their own, so killing the build's group can
        # leave a compiler running that writes into the folder after it is removed: stop every
        # process working in it first.
        for _ in range(3):
            kill_processes_using(self.dir)
            shutil.rmtree(self.dir, ignore_errors=True)
            time.sleep(0.5)
            if not self.dir.exists() and not processes_using(self.dir):
                break
        # SwiftPM leaves lock files named after the package path beside the temporary folder.
        for lock in Path(tempfile.gettempdir()).glob(str(self.dir).replace("/", "_") + "_*.lock"):
            lock.unlink(missing_ok=True)


CURRENT: list[subprocess.Popen] = []
FAILURE_LINE = re.compile(r"^\S* ?Test \S+.*(recorded an issue|failed after)")


def run(cmd: list[str], cwd: Path, timeout: float, log, stop_at_failure: bool = False) -> tuple[int | None, float, str]:
    """Runs `cmd` in its own process group; returns (exit status, or None on timeout, seconds,
    whole output). The group is killed on timeout or interruption and, with `stop_at_failure`, as
    soon as a test reports a failure (status 1 then): the mutant is caught, the rest need not run."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True, errors="replace")
    CURRENT.append(proc)
    lines: list[str] = []
    failed = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if stop_at_failure and not failed.is_set() and FAILURE_LINE.search(line):
                lines.append(f"mutate.py: first failure seen, stopping the suite: {line}")
                failed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    rc: int | None
    try:
        while True:
            if proc.poll() is not None:
                rc = proc.returncode
                break
            if failed.is_set():
                kill_group(proc)
                proc.wait()
                rc = 1
                break
            if time.monotonic() - start > timeout:
                kill_group(proc)
                proc.wait()
                rc = None
                break
            time.sleep(0.2)
        reader.join(timeout=10)
    except BaseException:
        kill_group(proc)
        raise
    finally:
        CURRENT.remove(proc)
    out = "".join(lines)
    if log:
        log.write(f"$ {' '.join(cmd)}\n{out}\nmutate.py: exit status {rc}\n")
        log.flush()
    return rc, time.monotonic() - start, out


def processes_using(folder: Path) -> list[int]:
    """Processes (Linux /proc) whose command line or working directory is inside `folder`."""
    found, key = [], str(folder)
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if int(entry.name) != os.getpid() and (key in cmdline or cwd.startswith(key)):
            found.append(int(entry.name))
    return found


def kill_processes_using(folder: Path) -> None:
    for pid in processes_using(folder):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def build(ws: Workspace, args, log) -> tuple[int | None, float, str]:
    """Builds what `swift test` runs: the test bundle and the `ember` CLI, which CLI tests start
    as a process. The benchmark executables are not relinked for every mutant."""
    seconds = 0.0
    for product in ("EmberPackageTests", "ember"):
        rc, more, out = run(["swift", "build", "--product", product], ws.dir, args.build_timeout, log)
        seconds += more
        if rc != 0:
            break
    return rc, seconds, out


def test(ws: Workspace, args, log, stop_at_failure: bool = True) -> tuple[int | None, float, str]:
    cmd = ["swift", "test", "--skip-build"]
    if args.filter:
        cmd += ["--filter", args.filter]
    if args.skip:
        cmd += ["--skip", args.skip]
    return run(cmd, ws.dir, args.timeout, log, stop_at_failure=stop_at_failure and not args.full_runs)


def failing_tests(output: str) -> str:
    """The failing tests' names (at most four) and any crash message, for the report."""
    names = list(dict.fromkeys(re.findall(r"Test (\S+?)\(.*?(?:recorded an issue|failed after)", output)))
    crash = re.search(r"(Fatal error|Precondition failed|exited with unexpected signal code \d+)[^\n]*", output)
    parts = []
    if names:
        parts.append(", ".join(names[:4]) + (f" (+{len(names) - 4})" if len(names) > 4 else ""))
    if crash:
        parts.append("crash: " + crash.group(0)[:100])
    return "; ".join(parts) or "non-zero exit"


def evaluate(m: Mutant, ws: Workspace, args, log) -> Result:
    start = time.monotonic()
    path = ws.dir / m.file
    if not path.exists():
        return Result(m, NOT_APPLICABLE, 0, "no such file")
    original = path.read_text()
    mutated = apply_mutant(m, original)
    if mutated is None:
        hits = sum(m.anchor in line for line in original.split("\n")) if m.line is None else 0
        return Result(m, NOT_APPLICABLE, 0, f"anchor found on {hits} lines" if m.line is None else "line changed")
    if log:
        log.write(f"\n===== {m.id} ({m.file})\n- {m.anchor.strip()}\n+ {m.replacement.strip()}\n")
    path.write_text(mutated)
    try:
        rc, _, out = build(ws, args, log)
        if rc is None:
            return Result(m, NO_COMPILE, time.monotonic() - start, "build timed out")
        if rc != 0:
            err = re.search(r"error: [^\n]*", out)
            return Result(m, NO_COMPILE, time.monotonic() - start, err.group(0)[:120] if err else "build failed")
        rc, _, out = test(ws, args, log)
        if rc not in (None, 0) and failing_tests(out) == "non-zero exit":
            # No failing test and no crash in the output: run it again rather than count a failure
            # of the machine (a process killed from outside) as a caught mutant.
            rc, _, out = test(ws, args, log)
        if rc is None:
            return Result(m, TIMEOUT, time.monotonic() - start, f"over {args.timeout:.0f} s")
        if rc != 0:
            detail = failing_tests(out)
            return Result(m, CAUGHT, time.monotonic() - start, detail if detail != "non-zero exit" else f"exit status {rc}, twice")
        return Result(m, SURVIVED, time.monotonic() - start, "")
    finally:
        path.write_text(original)


def report(results: list[Result], wall: float) -> None:
    width = max([len(r.mutant.id) for r in results] + [2])
    print()
    print(f"{'id':<{width}}  {'target':<16} {'result':<17} {'seconds':>7}  detail")
    for r in results:
        eq = " [equivalent]" if r.mutant.equivalent and r.status == SURVIVED else ""
        print(f"{r.mutant.id:<{width}}  {r.mutant.target:<16} {r.status:<17} {r.seconds:7.0f}  {r.detail}{eq}")
    print()
    print(f"{'target':<16} {'mutants':>7} {'caught':>6} {'timeout':>7} {'survived':>8} {'equiv':>5} {'no-build':>8} {'n/a':>4}  score")
    targets = sorted({r.mutant.target for r in results})
    for t in targets + ["TOTAL"]:
        rs = [r for r in results if t == "TOTAL" or r.mutant.target == t]
        c = sum(r.status == CAUGHT for r in rs)
        to = sum(r.status == TIMEOUT for r in rs)
        eq = sum(r.status == SURVIVED and bool(r.mutant.equivalent) for r in rs)
        sv = sum(r.status == SURVIVED for r in rs) - eq
        nb = sum(r.status == NO_COMPILE for r in rs)
        na = sum(r.status == NOT_APPLICABLE for r in rs)
        denominator = c + to + sv
        score = f"{100 * (c + to) / denominator:5.1f}% ({c + to}/{denominator})" if denominator else "-"
        print(f"{t:<16} {len(rs):>7} {c:>6} {to:>7} {sv:>8} {eq:>5} {nb:>8} {na:>4}  {score}")
    timed = [r.seconds for r in results if r.status in (CAUGHT, TIMEOUT, SURVIVED)]
    if timed:
        print(f"\nper built mutant: mean {sum(timed) / len(timed):.0f} s, max {max(timed):.0f} s" + (f"; wall {wall:.0f} s" if wall else ""))
    print("score = caught (test failure, crash or timeout) / (caught + survived), equivalent mutants excluded")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ids", help="comma-separated curated ids to run (default: all)")
    p.add_argument("--target", help="only mutants in this target (Sources/<target>/...)")
    p.add_argument("--auto", type=int, metavar="N", help="run N automatic mutants instead of the curated ones")
    p.add_argument("--seed", type=int, default=1, help="seed of the automatic sample (default 1)")
    p.add_argument("--files", action="append", metavar="GLOB",
                   help="files for --auto, relative to the repository root (repeatable)")
    p.add_argument("--timeout", type=float, default=900, help="seconds for one test run (default 900)")
    p.add_argument("--build-timeout", type=float, default=1800, help="seconds for one build (default 1800)")
    p.add_argument("--jobs", type=int, default=1, help="parallel workers; only 1 is supported")
    p.add_argument("--filter", help="pass --filter to swift test (a quick check, not the full suite)")
    p.add_argument("--full-runs", action="store_true",
                   help="run the whole suite even after a failure (default: stop at the first failing test)")
    p.add_argument("--skip", help="pass --skip to swift test (to show what other tests miss)")
    p.add_argument("--list", action="store_true", help="list the selected mutants and exit")
    p.add_argument("--report", type=Path, nargs="+", metavar="JSON",
                   help="print the table of saved --json results (a later file wins for the same id) and exit")
    p.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    p.add_argument("--log", type=Path, help="append every build and test output to this file")
    p.add_argument("--json", type=Path, help="write the results as JSON to this file")
    p.add_argument("--skip-done", type=Path, nargs="+", metavar="JSON",
                   help="leave out mutants whose id has a result in these --json files (to carry on a stopped run)")
    args = p.parse_args()
    if args.jobs != 1:
        p.error("--jobs: only 1 is supported (one build at a time; builds use every core)")

    if args.report:
        merged: dict[str, Result] = {}
        for path in args.report:
            for e in json.loads(path.read_text()):
                m = Mutant(id=e["id"], promise="", file=e["file"], anchor=e["anchor"], replacement=e["replacement"],
                           equivalent=e.get("equivalent"))
                merged[e["id"]] = Result(m, e["status"], e["seconds"], e["detail"])
        report(list(merged.values()), 0)
        return 0

    mutants = []
    if args.auto:
        mutants = generate_auto(args.files or ["Sources/EmberNN/**/*.swift"], args.auto, args.seed)
    if not args.auto or args.ids:  # --ids with --auto runs those curated mutants first
        curated = load_curated()
        if args.ids:
            wanted = [s.strip() for s in args.ids.split(",") if s.strip()]
            unknown = set(wanted) - {m.id for m in curated}
            if unknown:
                p.error(f"unknown ids: {', '.join(sorted(unknown))}")
            by_id = {m.id: m for m in curated}
            curated = [by_id[i] for i in dict.fromkeys(wanted)]  # in the order given
        mutants = curated + mutants
    if args.target:
        mutants = [m for m in mutants if m.target == args.target]
    if args.skip_done:
        done = {e["id"] for path in args.skip_done if path.exists() for e in json.loads(path.read_text())}
        mutants = [m for m in mutants if m.id not in done]
        print(f"--skip-done: {len(done)} results found; {len(mutants)} mutants left", flush=True)
    if args.list:
        for m in mutants:
            text = (ROOT / m.file).read_text() if (ROOT / m.file).exists() else ""
            ok = "ok " if apply_mutant(m, text) is not None else "N/A"
            print(f"{ok} {m.id:<40} {m.file}: {m.anchor.strip()!r} -> {m.replacement.strip()!r}")
        print(f"{len(mutants)} mutants")
        return 0
    if not mutants:
        p.error("no mutants selected")

    def interrupted(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, interrupted)  # also when started in the background, where it is ignored
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    log = args.log.open("a") if args.log else None
    ws = None
    results: list[Result] = []
    start = time.monotonic()
    try:
        ws = Workspace()
        print(f"copy: {ws.dir}; {len(mutants)} mutants; test timeout {args.timeout:.0f} s", flush=True)
        rc, seconds, out = build(ws, args, log)
        if rc != 0:
            print(f"the unmutated copy does not build (status {rc}):\n{out[-6000:]}")
            return 2
        print(f"unmutated build: {seconds:.0f} s", flush=True)
        if not args.no_baseline:
            rc, seconds, out = test(ws, args, log, stop_at_failure=False)
            if rc != 0:
                print(f"the unmutated suite fails (status {rc}); fix it first:\n{out[-6000:]}")
                return 2
            print(f"unmutated suite: passes in {seconds:.0f} s", flush=True)
        for n, m in enumerate(mutants, 1):
            r = evaluate(m, ws, args, log)
            results.append(r)
            print(f"[{n}/{len(mutants)}] {m.id}: {r.status} ({r.seconds:.0f} s) {r.detail}", flush=True)
            write_json(args.json, results)
    except KeyboardInterrupt:
        print("\ninterrupted; reporting what ran", flush=True)
    finally:
        for proc in list(CURRENT):
            kill_group(proc)
        if ws:
            ws.remove()
        if log:
            log.close()
    report(results, time.monotonic() - start)
    write_json(args.json, results)
    return 0


def write_json(path: Path | None, results: list[Result]) -> None:
    if path:
        path.write_text(json.dumps([
            {"id": r.mutant.id, "file": r.mutant.file, "target": r.mutant.target, "status": r.status,
             "seconds": round(r.seconds, 1), "detail": r.detail, "equivalent": r.mutant.equivalent,
             "anchor": r.mutant.anchor, "replacement": r.mutant.replacement} for r in results], indent=1))


if __name__ == "__main__":
    sys.exit(main())
