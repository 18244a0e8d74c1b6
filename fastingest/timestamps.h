/* Constants and a str accessor of the compiled dt parser (_timestamps.pyx). */
#ifndef FASTINGEST_TIMESTAMPS_H
#define FASTINGEST_TIMESTAMPS_H

#include <stdint.h>

/* The characters of an ASCII str, or NULL when it has any non-ASCII character. A str
   whose kind is 1 byte but holds Latin-1 characters is not ASCII, so checking the flag is
   required, not only the kind. */
static inline const unsigned char* fi_ascii_data(PyObject* o, Py_ssize_t* n) {
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(o) < 0) { PyErr_Clear(); return NULL; }
#endif
    if (!PyUnicode_IS_ASCII(o)) return NULL;
    *n = PyUnicode_GET_LENGTH(o);
    return (const unsigned char*)PyUnicode_DATA(o);
}
static const int64_t fi_pow10[10] = {
    1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
    1000000000LL};
static const unsigned char fi_month_days[16] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 0, 0, 0};
/* int64 ns spans 1677-09-21T00:12:43.145224192Z .. 2262-04-11T23:47:16.854775807Z. */
static const int64_t FI_MAX_S = 9223372036LL;     /* last second, only partly in range */
static const int64_t FI_MAX_FRAC = 854775807LL;
static const int64_t FI_MIN_S = -9223372037LL;    /* first second, only partly in range */
static const int64_t FI_MIN_FRAC = 145224192LL;
static const uint64_t FI_NEG_LIMIT = 9223372036854775808ULL;    /* |INT64_MIN| */
static const uint64_t FI_POS_LIMIT = 9223372036854775807ULL;

#endif /* FASTINGEST_TIMESTAMPS_H */
