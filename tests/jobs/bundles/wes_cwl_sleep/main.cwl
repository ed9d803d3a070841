cwlVersion: v1.2
class: CommandLineTool
doc: Sleeps for a long time; used to test cancellation.
baseCommand: [sleep]
inputs:
  seconds:
    type: int
    default: 600
    inputBinding:
      position: 1
outputs: []
