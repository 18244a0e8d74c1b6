/* The JSON event scan's byte searches, 16 or 64 bytes at a time (SSE2 where available,
   a plain loop elsewhere; define FI_NO_SSE2 to force the plain loops).

   Inside an event the scan stops only at a few bytes. Inside a string: '"' and '\\'
   (and '\n' for NDJSON, where a newline ends the event). Outside: '"', the four
   brackets (and '\n'). '[' and ']' differ from '{' and '}' only in bit 0x20, so one
   comparison of (c | 0x20) finds both of a pair. */
#ifndef FASTINGEST_SIMD_H
#define FASTINGEST_SIMD_H

#include <stdint.h>

#if (defined(__SSE2__) || defined(_M_X64)) && !defined(FI_NO_SSE2)
#include <emmintrin.h>
#define FR_SSE2 1
#endif

static inline int fr_ctz(unsigned m) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctz(m);
#else
    int i = 0;
    while (!(m & 1)) { m >>= 1; i++; }
    return i;
#endif
}

static inline int fr_ctz64(uint64_t m) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(m);
#else
    int i = 0;
    while (!(m & 1)) { m >>= 1; i++; }
    return i;
#endif
}

/* Index of the first '"', '\\' (or, with nd, '\n') in p[pos:end], else end. */
static inline Py_ssize_t fr_find_in_string(const unsigned char *p, Py_ssize_t pos,
                                           Py_ssize_t end, int nd) {
#ifdef FR_SSE2
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\');
    const __m128i n = _mm_set1_epi8(nd ? '\n' : '"');
    while (pos + 16 <= end) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + pos));
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q),
                                  _mm_cmpeq_epi8(v, b)), _mm_cmpeq_epi8(v, n)));
        if (m) return pos + fr_ctz((unsigned)m);
        pos += 16;
    }
#endif
    while (pos < end) {
        unsigned char c = p[pos];
        if (c == '"' || c == '\\' || (nd && c == '\n')) return pos;
        pos++;
    }
    return pos;
}

/* Index of the first '"', bracket (or, with nd, '\n') in p[pos:end], else end. */
static inline Py_ssize_t fr_find_outside(const unsigned char *p, Py_ssize_t pos,
                                         Py_ssize_t end, int nd) {
#ifdef FR_SSE2
    const __m128i q = _mm_set1_epi8('"'), open = _mm_set1_epi8('{'), close = _mm_set1_epi8('}');
    const __m128i bit = _mm_set1_epi8(0x20), n = _mm_set1_epi8(nd ? '\n' : '"');
    while (pos + 16 <= end) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + pos));
        __m128i f = _mm_or_si128(v, bit);
        int m = _mm_movemask_epi8(_mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(f, open), _mm_cmpeq_epi8(f, close)),
            _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, n))));
        if (m) return pos + fr_ctz((unsigned)m);
        pos += 16;
    }
#endif
    while (pos < end) {
        unsigned char c = p[pos], f = c | 0x20;
        if (f == '{' || f == '}' || c == '"' || (nd && c == '\n')) return pos;
        pos++;
    }
    return pos;
}

/* Bit k of each mask: byte k of the 64 at p is '"', '\\', '{' or '[', '}' or ']', '\n'
   (the last only with nd). */
typedef struct { uint64_t quote, bslash, open, close, nl; } FrMasks;

static inline void fr_masks64(const unsigned char *p, FrMasks *m, int nd) {
#ifdef FR_SSE2
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\'), n = _mm_set1_epi8('\n');
    const __m128i open = _mm_set1_epi8('{'), close = _mm_set1_epi8('}'), bit = _mm_set1_epi8(0x20);
    int j;
    m->quote = m->bslash = m->open = m->close = m->nl = 0;
    for (j = 0; j < 4; j++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * j));
        __m128i f = _mm_or_si128(v, bit);
        int sh = 16 * j;
        m->quote |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, q)) << sh;
        m->bslash |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, b)) << sh;
        m->open |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(f, open)) << sh;
        m->close |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(f, close)) << sh;
        if (nd) m->nl |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, n)) << sh;
    }
#else
    int k;
    m->quote = m->bslash = m->open = m->close = m->nl = 0;
    for (k = 0; k < 64; k++) {
        unsigned char c = p[k], f = c | 0x20;
        uint64_t bitk = (uint64_t)1 << k;
        if (c == '"') m->quote |= bitk;
        else if (c == '\\') m->bslash |= bitk;
        else if (f == '{') m->open |= bitk;
        else if (f == '}') m->close |= bitk;
        else if (nd && c == '\n') m->nl |= bitk;
    }
#endif
}

/* The bytes escaped by a backslash (simdjson's json_escape_scanner); *carry: whether the
   first byte of this block is escaped, and on return whether the next block's is. */
static inline uint64_t fr_escaped(uint64_t backslash, uint64_t *carry) {
    const uint64_t odd = 0xAAAAAAAAAAAAAAAAULL;
    uint64_t potential, code, escape, escaped;
    if (!backslash) { escaped = *carry; *carry = 0; return escaped; }
    potential = backslash & ~*carry;
    code = (((potential << 1) | odd) - potential) ^ odd;
    escaped = code ^ (backslash | *carry);
    escape = code & backslash;
    *carry = escape >> 63;
    return escaped;
}

/* Bit k set when an odd number of x's bits 0..k are set: with x the unescaped quotes,
   the bytes inside strings (each opening quote included, each closing one not). */
static inline uint64_t fr_prefix_xor(uint64_t x) {
    x ^= x << 1; x ^= x << 2; x ^= x << 4; x ^= x << 8; x ^= x << 16; x ^= x << 32;
    return x;
}

/* The '{' and '[' bytes in p[0:end] (inside strings too: an upper bound of the
   nesting); -1 when nd and a '\n' is among them. */
static inline Py_ssize_t fr_count_open(const unsigned char *p, Py_ssize_t end, int nd) {
    Py_ssize_t pos = 0, count = 0;
#ifdef FR_SSE2
    const __m128i open = _mm_set1_epi8('{'), bit = _mm_set1_epi8(0x20);
    const __m128i n = _mm_set1_epi8('\n');
    while (pos + 16 <= end) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + pos));
        unsigned m;
        if (nd && _mm_movemask_epi8(_mm_cmpeq_epi8(v, n))) return -1;
        m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_or_si128(v, bit), open));
        while (m) { count++; m &= m - 1; }
        pos += 16;
    }
#endif
    for (; pos < end; pos++) {
        unsigned char c = p[pos];
        if (nd && c == '\n') return -1;
        count += (c | 0x20) == '{';
    }
    return count;
}

#endif /* FASTINGEST_SIMD_H */
