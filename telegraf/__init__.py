"""The pinned Telegraf: its version, the plugin build tags and the build script (data only)."""
