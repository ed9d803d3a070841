cwlVersion: v1.2
class: CommandLineTool
doc: Multiply the count column of a two-column TSV (header kept) by a factor.
requirements:
  InlineJavascriptRequirement: {}
baseCommand: awk
arguments:
  - prefix: -v
    valueFrom: $("factor=" + inputs.factor)
  - -F
  - "\t"
  - -v
  - OFS=\t
  - 'NR == 1 { print; next } { print $1, $2 * factor }'
inputs:
  counts:
    type: File
    inputBinding:
      position: 10
  factor:
    type: int
    default: 2
stdout: scaled.tsv
outputs:
  scaled:
    type: stdout
