#!/usr/bin/env python3
"""Lines of product code at git revisions: the Rust sources of the crates
api, desired (once named build), operator and cli, without test modules
(`#[cfg(test)]` followed by `mod`, files named tests.rs or test_util.rs, and
anything under a tests/ folder), blank lines and comment lines.

    tools/count-lines.py REV...             the count at each revision
    tools/count-lines.py --commits REV...   what each commit adds, and the sum

docs/design.md ("Size") records what it printed.
"""

import subprocess
import sys

PRODUCT = ("api", "build", "desired", "operator", "cli")


def git(*args):
    return subprocess.run(("git",) + args, capture_output=True, text=True, check=True).stdout


def counts(rev):
    out = {}
    for path in git("ls-tree", "-r", "--name-only", rev, "crates").split():
        parts = path.split("/")
        if len(parts) < 4 or parts[1] not in PRODUCT or parts[2] != "src" or not path.endswith(".rs"):
            continue
        if parts[-1] in ("tests.rs", "test_util.rs") or "tests" in parts[3:-1]:
            continue
        lines = git("show", f"{rev}:{path}").split("\n")
        n = 0
        for i, line in enumerate(lines):
            if line.startswith("#[cfg(test)]") and i + 1 < len(lines) and lines[i + 1].startswith("mod "):
                break
            text = line.strip()
            if text and not text.startswith("//"):
                n += 1
        out[parts[1]] = out.get(parts[1], 0) + n
    return out


def main(argv):
    if argv[:1] == ["--commits"]:
        total = 0
        for rev in argv[1:]:
            delta = sum(counts(rev).values()) - sum(counts(f"{rev}~1").values())
            total += delta
            print(f"{git('rev-parse', '--short', rev).strip()} {delta:+d}")
        print(f"sum {total:+d}")
        return
    for rev in argv:
        c = counts(rev)
        crates = ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
        print(f"{git('rev-parse', '--short', rev).strip()} {sum(c.values())} ({crates})")


if __name__ == "__main__":
    main(sys.argv[1:] or ["HEAD"])
