#!/usr/bin/env python3
"""Runs the README's main command and checks its output is what the README says it
prints: the same lines, with timings and the temporary directory masked."""
import re
import subprocess
import sys
import tempfile

readme = open("README.md", encoding="utf-8").read()
section = readme[readme.index("**Run the main job**"):readme.index("**Run the tests:**")]
command = re.search(r"```sh\n(.*?)\n```", section, re.S).group(1).strip()
expected = re.search(r"```text\n(.*?)```", section, re.S).group(1)

run = subprocess.run(command, shell=True, capture_output=True, text=True)
if run.returncode != 0:
    sys.exit(f"`{command}` failed ({run.returncode}):\n{run.stderr}")


def normalize(text, tmp):
    text = text.replace(tmp.rstrip("/"), "/tmp")
    # Durations: 38.1 µs, 666.97ms, 1.02s.
    return re.sub(r"\d+(\.\d+)?\s?(µs|ms|s)\b", "<time>", text).splitlines()


got = normalize(run.stdout, tempfile.gettempdir())
want = normalize(expected, "/tmp")
if got != want:
    for i in range(max(len(got), len(want))):
        g = got[i] if i < len(got) else "<missing>"
        w = want[i] if i < len(want) else "<missing>"
        if g != w:
            print(f"line {i + 1}:\n  README: {w}\n  actual: {g}")
    sys.exit(f"`{command}` does not print what README.md says")
print(f"`{command}`: output matches README.md ({len(got)} lines)")
