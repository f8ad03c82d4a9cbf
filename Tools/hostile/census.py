#!/usr/bin/env python3
"""Hostile-input census of the `ember` command.

Runs `ember` with ordinary and hostile options, data files, checkpoints, output folders and
signals, and checks each outcome: a failure is one line on stderr starting "ember: error:" with
exit status 1 (argument-parser's own usage errors: exit 64 with its usage text), a success exits
0, an interruption exits 130/143; nothing traps ("Fatal error", a crash signal), hangs (timeout)
or leaves temporary files behind. Prints one row per case and a table per category; exits 1 if
any case broke its promise.

    python3 Tools/hostile/census.py [path/to/ember]     # default: .build/release/ember

Only the standard library is needed; the files it feeds are made in a temporary folder that is
removed at the end.
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EMBER = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "release", "ember")
TIMEOUT = 300


def npy(path, descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % d for d in shape) if len(shape) != 1 else "%d," % shape[0])
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + payload)


def idx(path, type_code, shape, payload):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape) + payload)


def make_files(d):
    """The data files the cases feed, made in folder `d`."""
    def write(name, text, mode="w"):
        with open(os.path.join(d, name), mode) as f:
            f.write(text)
    rows = "".join("%d,%d,%d\n" % (i % 7, i % 3, i % 4) for i in range(40))
    write("good.csv", "a,b,label\n" + rows)
    write("empty.csv", "")
    write("header-only.csv", "a,b,label\n")
    write("text.csv", "a,b,label\n1,x,0\n" + rows)
    write("ragged.csv", "a,b,label\n1,2\n" + rows)
    write("nan.csv", "a,b,label\n1,nan,0\n" + rows)
    write("inf-label.csv", "a,b,label\n1,2,inf\n" + rows)
    write("float-label.csv", "a,b,label\n1,2,0.5\n" + rows)
    write("negative-label.csv", "a,b,label\n1,2,-3\n" + rows)
    write("big-label.csv", "a,b,label\n1,2,9999\n" + rows)
    write("two-rows.csv", "a,b,label\n1,2,0\n3,4,1\n")
    write("garbage.csv", bytes(range(256)) * 40, "wb")
    write("seven.csv", "a,b,c,d,e,f,g,label\n" + "".join("1,2,3,4,5,6,7,%d\n" % (i % 2) for i in range(30)))
    n = 40
    npy(os.path.join(d, "x.npy"), "<f4", (n, 4), struct.pack("<%df" % (n * 4), *[float(i % 5) for i in range(n * 4)]))
    npy(os.path.join(d, "y.npy"), "<i8", (n,), struct.pack("<%dq" % n, *[i % 3 for i in range(n)]))
    npy(os.path.join(d, "y-float.npy"), "<f4", (n,), struct.pack("<%df" % n, *[0.5] + [1.0] * (n - 1)))
    npy(os.path.join(d, "y-nan.npy"), "<f8", (n,), struct.pack("<%dd" % n, *[float("nan")] + [1.0] * (n - 1)))
    npy(os.path.join(d, "y-short.npy"), "<i8", (n - 1,), struct.pack("<%dq" % (n - 1), *[1] * (n - 1)))
    npy(os.path.join(d, "x-nan.npy"), "<f4", (n, 4), struct.pack("<%df" % (n * 4), *[float("nan")] + [1.0] * (n * 4 - 1)))
    npy(os.path.join(d, "x-huge.npy"), "<f4", (1 << 40, 1 << 20), b"")
    npy(os.path.join(d, "x-truncated.npy"), "<f4", (n, 4), b"\0" * 10)
    idx(os.path.join(d, "x.idx"), 0x08, (n, 2, 2), bytes(range(n * 4)))
    idx(os.path.join(d, "y.idx"), 0x08, (n,), bytes(i % 3 for i in range(n)))
    idx(os.path.join(d, "y-float.idx"), 0x0D, (n,), struct.pack(">%df" % n, *[0.5] * n))
    idx(os.path.join(d, "x-huge.idx"), 0x08, (1 << 30, 1 << 30), b"")
    write("not-idx.idx", b"\x00\x00\x09\x03abc", "wb")


# (category, name, arguments, expected outcome, extra check or None)
# outcomes: "error" (exit 1, one line), "usage" (exit 64, argument-parser), "ok" (exit 0)
def cases():
    c = []
    def add(category, name, args, expect="error", check=None):
        c.append((category, name, args, expect, check))
    opts = "options"
    for flag, values in [("--epochs", ["0", "-1", "100001"]), ("--batch-size", ["0", "-5", "1"]),
                         ("--learning-rate", ["0", "-1", "nan", "inf"]), ("--hidden", ["0", "-1", "100000000"]),
                         ("--dropout", ["1", "-0.1", "nan"]), ("--validation-fraction", ["0", "1", "2", "nan", "0.0001"]),
                         ("--classes", ["0", "-1", "1000000"]), ("--checkpoint-every", ["0", "-2"])]:
        for v in values:
            # argument-parser reads "-1" as an option name: its usage error (exit 64)
            add(opts, "%s %s" % (flag, v), ["train", flag, v, "--output", "opt-out"], "usage" if v.startswith("-") else "error")
    for flag, v in [("--epochs", "x"), ("--seed", "-1"), ("--model", "vit"), ("--optimizer", "lbfgs"), ("--schedule", "step"),
                    ("--bogus", "1")]:
        add(opts, "%s %s" % (flag, v), ["train", flag, v], "usage")
    add(opts, "--labels without --data", ["train", "--labels", "y.npy"])
    add(opts, "example --steps 0", ["example", "--steps", "0"], "usage")
    add(opts, "example --learning-rate nan", ["example", "--learning-rate", "nan"], "usage")
    add(opts, "lstm --hidden 3e9", ["train", "--model", "lstm", "--hidden", "3000000000"])
    data = "data files"
    for name, args in [("missing file", ["--data", "missing.csv"]), ("a directory", ["--data", "."]),
                       ("empty CSV", ["--data", "empty.csv"]), ("header-only CSV", ["--data", "header-only.csv"]),
                       ("text in a number column", ["--data", "text.csv"]), ("ragged row", ["--data", "ragged.csv"]),
                       ("NaN feature", ["--data", "nan.csv"]), ("inf label", ["--data", "inf-label.csv"]),
                       ("0.5 label", ["--data", "float-label.csv"]), ("negative label", ["--data", "negative-label.csv"]),
                       ("label 9999", ["--data", "big-label.csv"]), ("two rows", ["--data", "two-rows.csv"]),
                       ("binary garbage .csv", ["--data", "garbage.csv"]), ("unknown label column", ["--data", "good.csv", "--label-column", "nope"]),
                       ("label column index 99", ["--data", "good.csv", "--label-column", "99"]),
                       ("lstm on 7 features", ["--data", "seven.csv", "--model", "lstm"]),
                       ("npy without labels", ["--data", "x.npy"]), ("npy float labels 0.5", ["--data", "x.npy", "--labels", "y-float.npy"]),
                       ("npy NaN labels", ["--data", "x.npy", "--labels", "y-nan.npy"]), ("npy label count mismatch", ["--data", "x.npy", "--labels", "y-short.npy"]),
                       ("npy NaN feature", ["--data", "x-nan.npy", "--labels", "y.npy"]), ("npy huge shape", ["--data", "x-huge.npy", "--labels", "y.npy"]),
                       ("npy truncated", ["--data", "x-truncated.npy", "--labels", "y.npy"]),
                       ("idx float labels", ["--data", "x.idx", "--labels", "y-float.idx"]), ("idx huge shape", ["--data", "x-huge.idx", "--labels", "y.idx"]),
                       ("idx bad type code", ["--data", "not-idx.idx", "--labels", "y.idx"]), ("unknown extension", ["--data", "README.txt"])]:
        add(data, name, ["train", "--epochs", "1", "--output", "data-out-" + name.replace(" ", "-")] + args)
    add(data, "NaN feature allowed", ["train", "--epochs", "1", "--data", "nan.csv", "--allow-non-finite", "--output", "nan-out"], "any")
    add(data, "good CSV", ["train", "--epochs", "1", "--batch-size", "8", "--data", "good.csv", "--output", "csv-out"], "ok")
    add(data, "good npy", ["train", "--epochs", "1", "--batch-size", "8", "--data", "x.npy", "--labels", "y.npy", "--output", "npy-out"], "ok")
    add(data, "good idx", ["train", "--epochs", "1", "--batch-size", "8", "--data", "x.idx", "--labels", "y.idx", "--output", "idx-out"], "ok")
    ck = "checkpoints"
    for name, path in [("missing", "missing.safetensors"), ("a directory", "."), ("empty file", "empty.csv"),
                       ("garbage", "garbage.csv"), ("plain weights (no ember metadata)", "plain.safetensors"),
                       ("truncated", "truncated.safetensors")]:
        for command in ["evaluate", "summary"]:
            add(ck, "%s %s" % (command, name), [command, "--checkpoint", path])
        if name != "plain weights (no ember metadata)":
            add(ck, "inspect %s" % name, ["inspect", path])
    add(ck, "inspect plain weights", ["inspect", "plain.safetensors"], "ok")
    add(ck, "inspect a checkpoint", ["inspect", "base/checkpoint.safetensors"], "ok")
    add(ck, "inspect without a file", ["inspect"], "usage")
    for field, value in [("hidden", -1), ("validationFraction", 2), ("classes", 0), ("inputs", 10 ** 12), ("dropout", 1.5),
                         ("model", "vit"), ("epochs", 0), ("batchSize", 1), ("learningRate", -1), ("seed", -4)]:
        for command in [["evaluate", "--checkpoint", "tampered-%s/checkpoint.safetensors" % field],
                        ["train", "--resume", "tampered-%s" % field]]:
            add(ck, "%s with settings.%s = %s" % (command[0], field, value), command, "error", ("tamper", field, value))
    for key, value in [("ember.epoch", "-3"), ("ember.step", "x"), ("ember.modes", "[{\"path\":\"\",\"mode\":\"sideways\"}]"),
                       ("ember.generator", "{}"), ("ember.progress", "{\"history\":[]}"), ("ember.optimizer", "{\"kind\":1}")]:
        add(ck, "resume with %s = %s" % (key, value[:20]), ["train", "--resume", "meta-%s" % key.split(".")[1]], "error", ("meta", key, value))
    out = "output and resume"
    add(out, "output is a file", ["train", "--epochs", "1", "--output", "good.csv"])
    add(out, "output under a file", ["train", "--epochs", "1", "--output", "good.csv/sub"])
    if os.geteuid() != 0:
        add(out, "read-only output", ["train", "--epochs", "1", "--output", "/proc/ember"])
    add(out, "resume a missing folder", ["train", "--resume", "nowhere"])
    add(out, "resume with --epochs", ["train", "--resume", "base", "--epochs", "5"])
    add(out, "resume a finished run", ["train", "--resume", "base"], "ok")
    add(out, "new run over another run's checkpoint", ["train", "--epochs", "3", "--output", "base"])
    add(out, "diverging run (SGD lr 100)", ["train", "--epochs", "1", "--optimizer", "sgd", "--learning-rate", "100", "--output", "div"])
    return c


def run(args, cwd, interrupt=None):
    p = subprocess.Popen([EMBER] + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if interrupt:
        marker, signals = interrupt
        deadline = time.time() + TIMEOUT
        buffer = b""
        os.set_blocking(p.stdout.fileno(), False)
        while marker.encode() not in buffer and p.poll() is None and time.time() < deadline:
            chunk = p.stdout.read() or b""
            buffer += chunk
            time.sleep(0.005)
        for s in signals:
            if p.poll() is None:
                p.send_signal(s)
                time.sleep(0.01)
        os.set_blocking(p.stdout.fileno(), True)
        try:
            out, err = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            return None, "", "timeout"
        return p.returncode, (buffer + out).decode(errors="replace"), err.decode(errors="replace")
    try:
        out, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        return None, "", "timeout"
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def tamper(work, folder, settings_change=None, meta_change=None):
    """Copies base/checkpoint.safetensors to folder/ with changed settings or metadata."""
    os.makedirs(os.path.join(work, folder), exist_ok=True)
    with open(os.path.join(work, "base", "checkpoint.safetensors"), "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header["__metadata__"]
    if settings_change:
        s = json.loads(meta["user.settings"])
        s[settings_change[0]] = settings_change[1]
        meta["user.settings"] = json.dumps(s, sort_keys=True)
    if meta_change:
        meta[meta_change[0]] = meta_change[1]
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(work, folder, "checkpoint.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob[8 + n:])


def leftovers(work):
    found = []
    for top, dirs, files in os.walk(work):
        found += [os.path.join(top, f) for f in files if ".ember-tmp-" in f]
    return found


def main():
    if not os.path.exists(EMBER):
        sys.exit("census: no ember executable at %s (swift build -c release --product ember)" % EMBER)
    work = tempfile.mkdtemp(prefix="ember-census-")
    rows, broken = [], []
    try:
        make_files(work)
        with open(os.path.join(work, "README.txt"), "w") as f:
            f.write("not data\n")
        code, _, err = run(["train", "--epochs", "2", "--output", "base"], work)
        assert code == 0, "the base run failed: " + err
        shutil.copy(os.path.join(work, "base", "checkpoint.safetensors"), os.path.join(work, "plain.safetensors"))
        blob = open(os.path.join(work, "base", "checkpoint.safetensors"), "rb").read()
        open(os.path.join(work, "truncated.safetensors"), "wb").write(blob[: len(blob) // 2])
        # plain weights: a safetensors file without ember metadata
        n = struct.unpack("<Q", blob[:8])[0]
        header = json.loads(blob[8:8 + n])
        header.pop("__metadata__")
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
        open(os.path.join(work, "plain.safetensors"), "wb").write(struct.pack("<Q", len(text)) + text + blob[8 + n:])
        for category, name, args, expect, check in cases():
            if check and check[0] == "tamper":
                tamper(work, "tampered-%s" % check[1], settings_change=(check[1], check[2]))
            if check and check[0] == "meta":
                tamper(work, "meta-%s" % check[1].split(".")[1], meta_change=(check[1], check[2]))
            rows.append((category, name, expect) + run(args, work))
        # signals
        for label, signals, status in [("SIGINT mid-run", [signal.SIGINT], 130), ("SIGTERM mid-run", [signal.SIGTERM], 143),
                                       ("double SIGINT", [signal.SIGINT, signal.SIGINT], 130)]:
            folder = "sig-%d-%d" % (len(signals), signals[0])
            code, out, err = run(["train", "--epochs", "8", "--output", folder], work, interrupt=("epoch   1/8", signals))
            rows.append(("signals", label, "signal %d" % status, code, out, err))
        # the resume after SIGINT equals an uninterrupted run
        run(["train", "--epochs", "8", "--output", "sig-straight"], work)
        code, out, err = run(["train", "--resume", "sig-1-2"], work)
        same = open(os.path.join(work, "sig-straight", "checkpoint.safetensors"), "rb").read() == \
            open(os.path.join(work, "sig-1-2", "checkpoint.safetensors"), "rb").read()
        rows.append(("signals", "resume after SIGINT is byte-identical", "ok", code if same else 99, out, err if same else "checkpoints differ"))
    finally:
        left = leftovers(work)
        shutil.rmtree(work, ignore_errors=True)

    tally = {}
    for category, name, expect, code, out, err in rows:
        crashed = code is None or "Fatal error" in err or "Backtrace" in err or (code is not None and code < 0) or \
            (code is not None and code > 128 and not expect.startswith("signal"))
        lines = [l for l in err.splitlines() if l.strip()]
        if crashed:
            verdict = "HANG" if code is None else "CRASH"
        elif expect == "error":
            verdict = "ok" if code == 1 and len(lines) == 1 and lines[0].startswith("ember: error: ") else "WRONG"
        elif expect == "usage":
            verdict = "ok" if code == 64 else "WRONG"
        elif expect == "ok":
            verdict = "ok" if code == 0 else "WRONG"
        elif expect == "any":
            verdict = "ok" if code in (0, 1) else "WRONG"
        else:
            verdict = "ok" if code == int(expect.split()[1]) else "WRONG"
        shown = lines[-1] if lines else (out.strip().splitlines() or [""])[-1]
        print("%-18s %-48s expect %-10s exit %-4s %-5s %s" % (category, name[:48], expect, code, verdict, shown[:150]))
        t = tally.setdefault(category, [0, 0, 0, 0])
        t[0] += 1
        t[{"ok": 1, "CRASH": 2, "HANG": 2}.get(verdict, 3)] += 1
        if verdict != "ok":
            broken.append(name)
    print()
    print("%-18s %6s %6s %14s %14s" % ("category", "cases", "ok", "crash or hang", "wrong outcome"))
    for category, (n, ok, crash, wrong) in tally.items():
        print("%-18s %6d %6d %14d %14d" % (category, n, ok, crash, wrong))
    total = sum(t[0] for t in tally.values())
    print("%-18s %6d %6d %14d %14d" % ("all", total, sum(t[1] for t in tally.values()), sum(t[2] for t in tally.values()),
                                      sum(t[3] for t in tally.values())))
    if left:
        print("temporary files left behind: %s" % left)
        broken.append("leftovers")
    if broken:
        print("broken promises: %s" % ", ".join(broken))
        sys.exit(1)
    print("census: every case kept its promise")


if __name__ == "__main__":
    main()
