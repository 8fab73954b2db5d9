/* sphinx_config.h (sphinx_config.h.in of 5.1.1) for wasm32-wasi: the configuration
 * PocketSphinx's public headers see. Matches ../config.h. */

#define DEFAULT_RADIX 12

#ifndef HAVE_STDINT_H
#define HAVE_STDINT_H
#endif

#define SIZEOF_LONG 4

#ifndef HAVE_LONG_LONG
#define HAVE_LONG_LONG
#endif

#define SIZEOF_LONG_LONG 8
