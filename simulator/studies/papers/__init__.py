"""One module per reproduced paper: its Study (claims and reference numbers), beside <name>.toml and <name>.md."""
