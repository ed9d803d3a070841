"""A tiny local tool for the bundled-file tests: reports the staged reference file's lines."""

import json
import sys

inputs = json.load(open(sys.argv[1]))
lines = open(inputs["reference"]).read().splitlines()
json.dump({"lines": len(lines), "first_gene": lines[1].split("\t")[0]}, open("outputs.json", "w"))
