"""mobilegen: image classifiers to native mobile SDKs, with a bit-exact numpy simulator."""

__version__ = "0.1.0"
