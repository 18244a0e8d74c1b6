/* String scanning helpers of the compiled JSON validator (_validate.pyx): plain ASCII
   in string bodies is skipped 16 bytes a step (SSE2; 8 bytes SWAR elsewhere; define
   FI_NO_SSE2 to force the portable path). */
#ifndef FASTINGEST_VALIDATE_H
#define FASTINGEST_VALIDATE_H

#include <stdint.h>
#include <string.h>

/* 8 bytes as a little-endian word: byte i of memory is bits 8i..8i+7. */
static inline uint64_t fi_load_le64(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}
/* Index of the lowest byte whose top bit is set in a nonzero mask. */
static inline int fi_first_byte(uint64_t m) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(m) >> 3;
#else
    int i = 0;
    while (!(m & 0x80u)) { m >>= 8; i++; }
    return i;
#endif
}
#define FI_ONES  0x0101010101010101ULL
#define FI_HIGHS 0x8080808080808080ULL
/* High bit set in each byte that is '"', '\\', < 0x20 or >= 0x80.  Only the lowest
   flagged byte is meaningful, and it is exact: borrows only run upwards from a hit. */
static inline uint64_t fi_swar_string_special(uint64_t w) {
    uint64_t q = w ^ (FI_ONES * '"');
    uint64_t b = w ^ (FI_ONES * '\\');
    return (w | ((w - FI_ONES * 0x20) & ~w) | ((q - FI_ONES) & ~q) | ((b - FI_ONES) & ~b))
           & FI_HIGHS;
}
static inline int fi_swar_ascii(uint64_t w) { return (w & FI_HIGHS) == 0; }

#if (defined(__SSE2__) || defined(_M_X64)) && !defined(FI_NO_SSE2)
#include <emmintrin.h>
#define FI_VALIDATE_SSE2 1
#endif

/* Index of the first byte in p[pos:end] that is '"', '\\', < 0x20 or >= 0x80, or end. */
static inline Py_ssize_t fi_skip_plain(const unsigned char *p, Py_ssize_t pos, Py_ssize_t end) {
#ifdef FI_VALIDATE_SSE2
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i limit = _mm_set1_epi8(0x20);   /* signed: bytes >= 0x80 are below too */
    while (pos + 16 <= end) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + pos));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                                _mm_cmpeq_epi8(v, bslash)),
                                   _mm_cmplt_epi8(v, limit));
        int mask = _mm_movemask_epi8(hit);
        if (mask) {
#if defined(__GNUC__) || defined(__clang__)
            return pos + __builtin_ctz((unsigned)mask);
#else
            while (!(mask & 1)) { mask >>= 1; pos++; }
            return pos;
#endif
        }
        pos += 16;
    }
#endif
    while (pos + 8 <= end) {
        uint64_t m = fi_swar_string_special(fi_load_le64(p + pos));
        if (m) return pos + fi_first_byte(m);
        pos += 8;
    }
    while (pos < end) {
        unsigned char c = p[pos];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return pos;
        pos++;
    }
    return pos;
}

#endif /* FASTINGEST_VALIDATE_H */
