/* MessagePack item headers for the compiled kernels: one 256-entry table, filled when a
   module is imported from fastingest.constants.MSGPACK_HEADERS (the one definition the
   pure-Python twins read too; see mpheader.pxd), and the decoder the framing scanner,
   the validator and the raw path's dt reader share. */
#ifndef FASTINGEST_MSGPACK_HEADER_H
#define FASTINGEST_MSGPACK_HEADER_H

#include <stdint.h>
#include <string.h>

/* Item classes (the C names of constants.MP_*; mpheader.pxd maps one to the other). */
enum { FI_MP_SCALAR, FI_MP_STR, FI_MP_BIN, FI_MP_EXT, FI_MP_ARRAY, FI_MP_MAP, FI_MP_RESERVED,
       FI_MP_CUT };

/* cls: an FI_MP_* class; head: header size (first byte, length or count field, ext type
   byte); n >= 0: the payload size or element count the first byte gives; n < 0: a
   -n-byte big-endian field after the first byte gives it. */
typedef struct { unsigned char cls, head; signed char n, unused; } fi_mp_entry;   /* 4 bytes: one load */

static fi_mp_entry fi_mp_headers[256];

static inline uint32_t fi_be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t fi_be64(const unsigned char *p) {
    return ((uint64_t)fi_be32(p) << 32) | fi_be32(p + 4);
}

/* The big-endian IEEE 754 float 32 and float 64 at p (MessagePack's 0xCA and 0xCB). */
static inline float fi_be_float(const unsigned char *p) {
    uint32_t u = fi_be32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline double fi_be_double(const unsigned char *p) {
    uint64_t u = fi_be64(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* The big-endian unsigned field of `width` (1, 2 or 4) bytes at p. */
static inline uint32_t fi_be(const unsigned char *p, int width) {
    if (width == 1) return p[0];
    if (width == 2) return ((uint32_t)p[0] << 8) | p[1];
    return fi_be32(p);
}

/* The class of the item at p (of which `avail` bytes are readable), with its header
   size in *head and its payload size or element count in *n; FI_MP_CUT when `avail`
   cuts off the length or count field. */
static inline int fi_mp_header(const unsigned char *p, Py_ssize_t avail, int *head, int64_t *n) {
    const fi_mp_entry e = fi_mp_headers[p[0]];
    *head = e.head;
    if (e.n >= 0) {
        *n = e.n;
        return e.cls;
    }
    if (avail < e.head) return FI_MP_CUT;
    *n = fi_be(p + 1, -e.n);
    return e.cls;
}

/* Containers fi_mp_skip follows in its own stack; deeper items go the slow way. */
#define FI_MP_SKIP_DEPTH 32
/* The end of the item at p[pos] when all of it lies in p[pos:end]: the framing
   scanner's walk in one tight loop, for an event that arrived whole. -1 whenever the
   step-by-step walk has something to say or to wait for — the item runs past `end`, a
   container announces more items than bytes are left (at least one byte an item), a
   reserved byte, nesting over max_depth (or FI_MP_SKIP_DEPTH) — so the caller walks it
   that way instead. Payloads are skipped, not checked (the builder or validator does). */
static inline Py_ssize_t fi_mp_skip(const unsigned char *p, Py_ssize_t pos, Py_ssize_t end,
                                    int max_depth) {
    int64_t outer[FI_MP_SKIP_DEPTH];   /* the enclosing levels' items still to walk */
    int depth = 0;
    int64_t left = 1, n;               /* items still to walk at this level */
    for (;;) {
        while (left == 0) {
            if (depth == 0)
                return pos;
            left = outer[--depth];
        }
        if (pos >= end)
            return -1;
        const fi_mp_entry e = fi_mp_headers[p[pos]];
        if (e.n >= 0) {
            n = e.n;
        } else {
            if (end - pos < e.head)
                return -1;
            n = fi_be(p + pos + 1, -e.n);
        }
        left--;
        pos += e.head;
        if (e.cls == FI_MP_ARRAY || e.cls == FI_MP_MAP) {
            if (depth >= max_depth || depth >= FI_MP_SKIP_DEPTH)
                return -1;
            if (e.cls == FI_MP_MAP)
                n *= 2;
            if (n > end - pos)
                return -1;
            outer[depth++] = left;
            left = n;
        } else if (e.cls == FI_MP_RESERVED) {
            return -1;
        } else {
            if (n > end - pos)
                return -1;
            pos += n;
        }
    }
}
#endif /* FASTINGEST_MSGPACK_HEADER_H */
