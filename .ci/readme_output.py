#!/usr/bin/env python3
"""Runs the README's main command and checks its output is what the README says it
prints: the same lines, with timings and the temporary directory masked. A line `...`
in the README's sample stands for any number of lines it leaves out.

Usage: readme_output.py [--save FILE]   (--save keeps the command's output)
"""
import argparse
import re
import subprocess
import sys
import tempfile

parser = argparse.ArgumentParser()
parser.add_argument("--save", help="write the command's standard output here")
args = parser.parse_args()

readme = open("README.md", encoding="utf-8").read()
section = readme[readme.index("**Run the main job**"):readme.index("**Run the tests")]
command = re.search(r"```sh\n(.*?)\n```", section, re.S).group(1).strip()
expected = re.search(r"```text\n(.*?)```", section, re.S).group(1)

run = subprocess.run(command, shell=True, capture_output=True, text=True)
if args.save:
    with open(args.save, "w", encoding="utf-8") as f:
        f.write(run.stdout)
if run.returncode != 0:
    sys.exit(f"`{command}` failed ({run.returncode}):\n{run.stderr}")


def normalize(text, tmp):
    text = text.replace(tmp.rstrip("/"), "/tmp")
    # Durations: 38.1 µs, 666.97ms, 1.02s.
    return re.sub(r"\d+(\.\d+)?\s?(µs|ms|s)\b", "<time>", text).splitlines()


def matches(got, want):
    """`want` matches `got` line for line, where a `...` line in `want` skips lines."""
    if not want:
        return not got
    if want[0] == "...":
        return any(matches(got[k:], want[1:]) for k in range(len(got) + 1))
    return bool(got) and got[0] == want[0] and matches(got[1:], want[1:])


got = normalize(run.stdout, tempfile.gettempdir())
want = normalize(expected, "/tmp")
if not matches(got, want):
    print("README:\n  " + "\n  ".join(want) + "\nactual:\n  " + "\n  ".join(got))
    sys.exit(f"`{command}` does not print what README.md says")
print(f"`{command}`: output matches README.md ({len(want)} lines shown of {len(got)})")
