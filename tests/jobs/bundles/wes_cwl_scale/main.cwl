cwlVersion: v1.2
class: Workflow
doc: Scale the count column of a table; the tool lives in tools/ (sent as a second attachment).
inputs:
  counts: File
  factor:
    type: int
    default: 2
steps:
  scale:
    run: tools/scale.cwl
    in:
      counts: counts
      factor: factor
    out: [scaled]
outputs:
  scaled:
    type: File
    outputSource: scale/scaled
