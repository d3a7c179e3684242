"""``bridge-cli``: render, check and run telegraf.conf; one module per subcommand."""
