version 1.0

# `column` counts the value columns from 1 (0 is the row names); a column the table lacks is an
# "Array index out of bounds" evaluation error, which the engine reports to the user.
workflow Pick {
    input {
        File table
        Int column
    }

    Array[Array[String]] cells = read_tsv(table)

    scatter (row in cells) {
        Array[String] kept = [row[0], row[column]]
    }

    output {
        File picked = write_tsv(kept)
        Int rows = length(cells) - 1
    }
}
