version 1.0

import "tasks/scale.wdl" as tasks

workflow ScaleCounts {
    input {
        File counts
        Int factor = 2
    }

    call tasks.Scale { input: counts = counts, factor = factor }

    output {
        File scaled = Scale.scaled
        Int rows = Scale.rows
    }
}
