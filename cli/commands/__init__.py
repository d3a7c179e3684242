"""One module per ``bridge-cli`` subcommand."""
