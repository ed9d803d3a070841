"""Resource types: the catalogue, validation of uploaded files, and type suggestion."""
