"""A tiny local tool for the jobs tests: its `behavior` input picks what it does."""

import json
import os
import sys
import time

inputs = json.load(open(sys.argv[1]))
behavior = inputs.get("behavior", "ok")
number = inputs["number"]
print(f"got {number} ({behavior})")
print("a line on stderr", file=sys.stderr)

if behavior == "sleep":
    time.sleep(float(inputs.get("seconds") or 30))
elif behavior == "fail":
    json.dump(["The chosen samples are not in the matrix.", "Choose at least 2 samples."], open("errors.json", "w"))
    sys.exit(2)
elif behavior == "crash":
    raise RuntimeError("boom: an unexpected crash")
elif behavior == "oom":
    hog = bytearray(4 * 1024**3)
elif behavior == "bad_output":
    json.dump({"doubled": "not a number", "report": "missing.tsv"}, open("outputs.json", "w"))
    sys.exit(0)

with open("report.tsv", "w") as out:
    out.write("gene\tS1\tS2\n")
    out.write(f"g1\t{number}\t{number * 2}\n")
    out.write("g2\t1.5\t2.5\n")
    if inputs.get("matrix"):
        out.write(f"g3\t{len(open(inputs['matrix']).read().splitlines())}\t0\n")
outputs = {"doubled": number * 2, "report": "report.tsv", "cpus": int(os.environ.get("MEV_N_CPUS", "0"))}
json.dump(outputs, open("outputs.json", "w"))
