"""tamizdat: signed offline news bundles, origin and mirrors."""

__version__ = "0.1.0"
