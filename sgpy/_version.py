"""sgpy's version, in one place.

setuptools reads it statically for the distribution's metadata
(``[tool.setuptools.dynamic]`` in pyproject.toml), :mod:`sgpy` re-exports it
as ``sgpy.__version__``, and the documentation's ``conf.py`` reads it too, so
a release changes this line only.
"""

__version__ = "0.1.0"
