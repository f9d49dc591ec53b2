// zlib, for PNG encoding and decoding (deflate streams and CRC-32).
#ifndef PILOT_CZLIB_SHIM_H
#define PILOT_CZLIB_SHIM_H
#include <zlib.h>
#endif
