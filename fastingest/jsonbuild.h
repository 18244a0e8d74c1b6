/* fastingest's own JSON object builder (_jsonbuild.pyx): one recursive-descent pass over
   the bytes of one JSON value that builds the Python objects orjson.loads builds.

   It only builds what it is sure orjson builds identically and refuses everything else:
   a refusal is a NULL return (an exception may be set; the caller clears it) and the
   caller asks orjson, so errors, their messages and offsets stay orjson's. Refused:
   any grammar error, integers outside int64/uint64, floats that overflow to infinity,
   lone or misordered surrogate escapes, invalid UTF-8 (Python's strict decoder), nesting
   deeper than FJ_MAX_DEPTH, control bytes inside strings.

   Floats: a mantissa of at most 15 digits with a power of ten within +-22 is exact in
   one IEEE multiplication or division (Clinger's fast path, where doubles are evaluated
   as doubles: FLT_EVAL_METHOD 0); every other form goes to
   PyOS_string_to_double, which is correctly rounded, as orjson's parser is.

   Keys of at most FI_KEY_MAX ASCII bytes come from unpack.h's cache (a separate cache
   per module: the static array is per translation unit), so events share key objects. */
#ifndef FASTINGEST_JSONBUILD_H
#define FASTINGEST_JSONBUILD_H

#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "unpack.h"

#if (defined(__SSE2__) || defined(_M_X64)) && !defined(FI_NO_SSE2)
#include <emmintrin.h>
#define FJ_SSE2 1
#endif

/* Deeper values are always refused (orjson's own limit is 1024; Limits.max_depth is at
   most 1000, and this bounds the C recursion). */
#define FJ_MAX_DEPTH 1000

typedef struct {
    const unsigned char *p;     /* the next byte */
    const unsigned char *end;   /* the value's bytes end here */
    int max_depth;              /* deeper containers are refused (<= FJ_MAX_DEPTH) */
    int nd;                     /* NDJSON: a newline is no whitespace (it ends the line) */
} fj_cursor;

static PyObject *fj_value(fj_cursor *c, int depth);

static inline void fj_skip_ws(fj_cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' ||
                             (*c->p == '\n' && !c->nd)))
        c->p++;
}

/* Index (from p) of the first byte in p[0:n] that is '"', '\\' or below 0x20 — or, with
   ascii (a constant at each call), above 0x7F: the end of a string's unescaped run (of
   plain ASCII). */
static inline Py_ssize_t fj_run(const unsigned char *p, Py_ssize_t n, int ascii) {
    Py_ssize_t i = 0;
#ifdef FJ_SSE2
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\');
    const __m128i sp = _mm_set1_epi8(0x20), lo = _mm_set1_epi8(0x1F);
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
        /* ascii, signed compare: bytes >= 0x80 are negative, so one compare finds them and
           the controls; else unsigned v < 0x20 <=> min(v, 0x1F) == v */
        __m128i stop = ascii ? _mm_cmplt_epi8(v, sp) : _mm_cmpeq_epi8(_mm_min_epu8(v, lo), v);
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q),
                                  _mm_cmpeq_epi8(v, b)), stop));
        if (m)
            return i + __builtin_ctz((unsigned)m);
        i += 16;
    }
#endif
    while (i < n) {
        unsigned char ch = p[i];
        if (ch == '"' || ch == '\\' || ch < 0x20 || (ascii && ch > 0x7F))
            return i;
        i++;
    }
    return n;
}

static inline int fj_hex4(const unsigned char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char h = p[i];
        v <<= 4;
        if (h >= '0' && h <= '9') v |= (uint32_t)(h - '0');
        else if (h >= 'a' && h <= 'f') v |= (uint32_t)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F') v |= (uint32_t)(h - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* A string with escapes or non-ASCII bytes whose body starts at s (after the quote):
   unescaped into a UTF-8 buffer (never longer than the escaped text) and decoded
   strictly. c->p is past the closing quote on success. */
static PyObject *fj_string_slow(fj_cursor *c, const unsigned char *s) {
    const unsigned char *p = s, *end = c->end;
    char small[256] = {0};
    char *buf = small, *w;
    PyObject *str;
    /* find the closing quote first: the buffer is sized by the escaped length */
    while (p < end && *p != '"') {
        if (*p < 0x20)
            return NULL;
        p += (*p == '\\') ? 2 : 1;
    }
    if (p >= end)
        return NULL;
    if (p - s > (Py_ssize_t)sizeof(small)) {
        buf = (char *)PyMem_Malloc((size_t)(p - s));
        if (buf == NULL)
            return PyErr_NoMemory();
    }
    w = buf;
    p = s;
    while (*p != '"') {
        unsigned char ch = *p;
        if (ch != '\\') {
            *w++ = (char)ch;
            p++;
            continue;
        }
        ch = p[1];
        p += 2;
        switch (ch) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (end - p < 4 || !fj_hex4(p, &cp))
                goto refuse;
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                goto refuse;                 /* a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !fj_hex4(p + 2, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                    goto refuse;             /* a high surrogate without its low half */
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            /* 6 (or 12) escaped bytes always hold the 1 to 4 bytes of UTF-8 */
            if (cp < 0x80) {
                *w++ = (char)cp;
            } else if (cp < 0x800) {
                *w++ = (char)(0xC0 | (cp >> 6));
                *w++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *w++ = (char)(0xE0 | (cp >> 12));
                *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *w++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *w++ = (char)(0xF0 | (cp >> 18));
                *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *w++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            goto refuse;
        }
    }
    c->p = p + 1;
    str = PyUnicode_DecodeUTF8(buf, w - buf, NULL);
    if (buf != small)
        PyMem_Free(buf);
    return str;
refuse:
    if (buf != small)
        PyMem_Free(buf);
    return NULL;
}

/* The string whose opening quote is at c->p; keys (is_key) of up to FI_KEY_MAX plain
   ASCII bytes come from the key cache. */
static inline PyObject *fj_string(fj_cursor *c, int is_key) {
    const unsigned char *s = c->p + 1;
    Py_ssize_t n = fj_run(s, c->end - s, 1);
    PyObject *str;
    if (s + n >= c->end)
        return NULL;
    if (s[n] > 0x7F) {
        /* non-ASCII text: without escapes it is decoded where it lies */
        n += fj_run(s + n, c->end - s - n, 0);
        if (s + n >= c->end)
            return NULL;
        if (s[n] == '"') {
            c->p = s + n + 1;
            return PyUnicode_DecodeUTF8((const char *)s, n, NULL);
        }
    }
    if (s[n] != '"')
        return fj_string_slow(c, s);
    c->p = s + n + 1;
    if (is_key && n <= FI_KEY_MAX)
        return fi_key(s, n);
    if (n <= FI_VALUE_MAX)   /* unpack.h's value cache */
        return fi_value(s, n);
    str = PyUnicode_New(n, 127);
    if (str != NULL)
        memcpy(PyUnicode_DATA(str), s, (size_t)n);
    return str;
}

static const double fj_pow10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A float token p[0:n] (grammar already checked) by the correctly rounded parser. */
static PyObject *fj_float_slow(const unsigned char *p, Py_ssize_t n) {
    char small[64];
    char *buf = small, *stop = NULL;
    double d;
    if (n >= (Py_ssize_t)sizeof(small)) {
        buf = (char *)PyMem_Malloc((size_t)n + 1);
        if (buf == NULL)
            return PyErr_NoMemory();
    }
    memcpy(buf, p, (size_t)n);
    buf[n] = '\0';
    d = PyOS_string_to_double(buf, &stop, NULL);
    if (stop != buf + n || (d == -1.0 && PyErr_Occurred()) || isinf(d)) {
        if (buf != small)
            PyMem_Free(buf);
        return NULL;
    }
    if (buf != small)
        PyMem_Free(buf);
    return PyFloat_FromDouble(d);
}

/* The number at c->p: RFC 8259's grammar exactly; ints within int64/uint64. */
static PyObject *fj_number(fj_cursor *c) {
    const unsigned char *start = c->p, *p = c->p, *end = c->end;
    int neg = 0, overflow = 0, is_float = 0;
    Py_ssize_t digits = 0, frac_digits = 0;
    uint64_t m = 0;
    int64_t exp10 = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return NULL;
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9')
            return NULL;                      /* leading zero */
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            unsigned d = (unsigned)(*p - '0');
            if (!overflow && m <= (UINT64_MAX - d) / 10)
                m = m * 10 + d;
            else
                overflow = 1;                 /* beyond uint64 */
            digits++;
            p++;
        }
    }
    if (p < end && *p == '.') {
        is_float = 1;
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits + frac_digits < 19)    /* only read when 15 digits or fewer */
                m = m * 10 + (unsigned)(*p - '0');
            frac_digits++;
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        is_float = 1;
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9') {
            if (exp10 < 100000)
                exp10 = exp10 * 10 + (*p - '0');
            p++;
        }
        if (eneg)
            exp10 = -exp10;
    }
    if (p >= end)
        return NULL;                          /* a value never ends its bytes here */
    c->p = p;
    if (!is_float) {
        if (overflow)
            return NULL;                      /* orjson's rule beyond 64 bits: ask it */
        if (!neg)
            return PyLong_FromUnsignedLongLong(m);
        if (m > (uint64_t)INT64_MAX + 1)
            return NULL;
        return PyLong_FromLongLong(m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m);
    }
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    /* (only where double arithmetic is done in double: x87's extended precision would
       round twice) */
    if (!overflow && digits + frac_digits <= 15) {
        /* mantissa m (< 10^15 < 2^53, exact) times 10^(exp10 - frac_digits) */
        int64_t e = exp10 - frac_digits;
        double d = (double)m;
        if (m == 0 || (e >= -22 && e <= 22)) {
            if (m != 0)
                d = e >= 0 ? d * fj_pow10[e] : d / fj_pow10[-e];
            return PyFloat_FromDouble(neg ? -d : d);
        }
    }
#endif
    return fj_float_slow(start, p - start);
}

/* After a container's opening bracket (consumed) or one of its members: 1 when another
   member follows (its separating comma consumed, if any), 0 at the closing bracket
   (consumed), -1 for anything else. `first`: right after the opening bracket. */
static inline int fj_next(fj_cursor *c, unsigned char close, int first) {
    fj_skip_ws(c);
    if (c->p >= c->end)
        return -1;
    if (*c->p == close) {
        c->p++;
        return 0;
    }
    if (first)
        return 1;
    if (*c->p != ',')
        return -1;
    c->p++;
    fj_skip_ws(c);
    return 1;
}

/* The container when its closing bracket was reached (more == 0), else NULL (refused). */
static inline PyObject *fj_closed(PyObject *container, int more) {
    if (more == 0)
        return container;
    Py_DECREF(container);
    return NULL;
}

static PyObject *fj_object(fj_cursor *c, int depth) {
    PyObject *d, *key, *value;
    int more;
    if (depth > c->max_depth)
        return NULL;
    c->p++;                                   /* the '{' */
    d = PyDict_New();
    if (d == NULL)
        return NULL;
    for (more = fj_next(c, '}', 1); more > 0; more = fj_next(c, '}', 0)) {
        if (c->p >= c->end || *c->p != '"')
            break;
        key = fj_string(c, 1);
        if (key == NULL)
            break;
        fj_skip_ws(c);
        if (c->p >= c->end || *c->p != ':') {
            Py_DECREF(key);
            break;
        }
        c->p++;
        fj_skip_ws(c);
        value = c->p < c->end ? fj_value(c, depth) : NULL;
        if (value == NULL) {
            Py_DECREF(key);
            break;
        }
        more = PyDict_SetItem(d, key, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (more < 0)
            break;
    }
    return fj_closed(d, more);
}

static PyObject *fj_array(fj_cursor *c, int depth) {
    PyObject *list, *item;
    int more;
    if (depth > c->max_depth)
        return NULL;
    c->p++;                                   /* the '[' */
    list = PyList_New(0);
    if (list == NULL)
        return NULL;
    for (more = fj_next(c, ']', 1); more > 0; more = fj_next(c, ']', 0)) {
        item = c->p < c->end ? fj_value(c, depth) : NULL;
        if (item == NULL)
            break;
        more = PyList_Append(list, item);
        Py_DECREF(item);
        if (more < 0)
            break;
    }
    return fj_closed(list, more);
}

/* The value at c->p (at least one byte is there) inside a container at `depth`. */
static PyObject *fj_value(fj_cursor *c, int depth) {
    const unsigned char *p = c->p;
    Py_ssize_t left = c->end - p;
    switch (*p) {
    case '"':
        return fj_string(c, 0);
    case '{':
        return fj_object(c, depth + 1);
    case '[':
        return fj_array(c, depth + 1);
    case 't':
        if (left >= 4 && memcmp(p, "true", 4) == 0) {
            c->p += 4;
            Py_RETURN_TRUE;
        }
        return NULL;
    case 'f':
        if (left >= 5 && memcmp(p, "false", 5) == 0) {
            c->p += 5;
            Py_RETURN_FALSE;
        }
        return NULL;
    case 'n':
        if (left >= 4 && memcmp(p, "null", 4) == 0) {
            c->p += 4;
            Py_RETURN_NONE;
        }
        return NULL;
    default:
        if (*p == '-' || (*p >= '0' && *p <= '9'))
            return fj_number(c);
        return NULL;
    }
}

/* `obj` (a new reference, or NULL) when only whitespace follows it, else NULL. */
static inline PyObject *fj_whole(fj_cursor *c, PyObject *obj) {
    if (obj == NULL)
        return NULL;
    fj_skip_ws(c);
    if (c->p != c->end)
        Py_CLEAR(obj);
    return obj;
}

/* The JSON object at p[0] (a '{') followed by nothing but whitespace up to p[n] (an
   event's span has none; a one-event body may have some), nesting at most max_depth
   (<= FJ_MAX_DEPTH) deep; nd: NDJSON, where a newline is no whitespace. NULL when
   refused. */
static inline PyObject *fj_build_object(const unsigned char *p, Py_ssize_t n, int max_depth,
                                        int nd) {
    fj_cursor c;
    if (n < 2 || p[0] != '{')
        return NULL;
    c.p = p;
    c.end = p + n;
    c.max_depth = max_depth < FJ_MAX_DEPTH ? max_depth : FJ_MAX_DEPTH;
    c.nd = nd;
    return fj_whole(&c, fj_object(&c, 1));
}

/* Any JSON value that is p[0:n] with JSON whitespace around it (orjson.loads' input),
   or NULL when refused. A trailing number needs a byte after it: a copy with a space
   appended is made for that case only. */
static PyObject *fj_build_document(const unsigned char *p, Py_ssize_t n) {
    fj_cursor c;
    PyObject *obj;
    c.p = p;
    c.end = p + n;
    c.max_depth = FJ_MAX_DEPTH;
    c.nd = 0;
    fj_skip_ws(&c);
    if (c.p >= c.end)
        return NULL;
    if (*c.p == '-' || (*c.p >= '0' && *c.p <= '9')) {
        Py_ssize_t off = c.p - p;
        unsigned char *copy = (unsigned char *)PyMem_Malloc((size_t)n + 1);
        if (copy == NULL)
            return PyErr_NoMemory();
        memcpy(copy, p, (size_t)n);
        copy[n] = ' ';
        c.p = copy + off;
        c.end = copy + n + 1;
        obj = fj_whole(&c, fj_number(&c));
        PyMem_Free(copy);
        return obj;
    }
    return fj_whole(&c, fj_value(&c, 0));
}

#endif /* FASTINGEST_JSONBUILD_H */
