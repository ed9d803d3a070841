version 1.0

# Keep the row names and one value column of a table. Toil's WES runs this with toil-wdl-runner.
# Every step is a workflow expression, not a task: Toil 9.6 runs each task command in a container
# (Docker or Singularity), and the machines that run the test suite have neither.

import "lib/columns.wdl" as columns

workflow PickColumn {
    input {
        File counts
        Int column = 1
    }

    call columns.Pick { input: table = counts, column = column }

    output {
        File picked = Pick.picked
        Int rows = Pick.rows
    }
}
