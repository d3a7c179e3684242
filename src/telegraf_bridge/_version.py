"""Single source of the package version (read by setuptools and ``bridge-cli --version``)."""

__version__ = "0.1.0"
