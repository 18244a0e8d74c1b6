# C-level entry of the compiled builder, for the other compiled modules
# (``from fastingest._build cimport take_frames``): ``take`` without the Python call.
from libc.stdint cimport int64_t

from .framing._framing cimport Frames

cdef tuple take_frames(Frames frames, int kind, int max_depth, int64_t received_ns, bint collect,
                       bint raw)
