/* PocketSphinx's configure results (config.h.in of 5.1.1) for wasm32-wasi with
 * wasi-libc, written by hand: the plugin is cross-compiled, so nothing is probed.
 * No popen (no processes in the sandbox), floating point (FIXED_POINT off), the
 * random number generator without thread-local storage (one thread). */

#define DEFAULT_RADIX 12
#define HAVE_LONG_LONG 1
#define HAVE_SNPRINTF 1
#define HAVE_SYS_STAT_H 1
#define HAVE_SYS_TYPES_H 1
#define HAVE_UNISTD_H 1
#define HAVE_STDINT_H 1
#define SIZEOF_LONG 4
#define SIZEOF_LONG_LONG 8

#define PACKAGE_NAME "PocketSphinx"
#define PACKAGE_STRING "PocketSphinx 5.1.1"
#define PACKAGE_TARNAME "pocketsphinx-5.1.1"
#define PACKAGE_VERSION "5.1.1"
