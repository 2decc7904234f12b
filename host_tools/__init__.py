"""SqueezeEdge: an int8 SqueezeBERT that understands home commands on microcontrollers.

The library is the API; the ``squeezeedge`` command is a thin layer over it.
"""

__version__ = "0.1.0"
