// libjpeg-turbo's TurboJPEG API (Debian libturbojpeg0-dev): JPEG decoding for import and
// encoding for `pilot data export --image-format jpeg`. TurboJPEG reports errors through return
// codes and tjGetErrorStr2, so no setjmp/longjmp reaches Swift.
#ifndef PILOT_CTURBOJPEG_SHIM_H
#define PILOT_CTURBOJPEG_SHIM_H
#include <turbojpeg.h>
#endif
