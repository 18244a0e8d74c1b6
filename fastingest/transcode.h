/* The JSON writer of the compiled MessagePack-to-JSON transcoder (_transcode.pyx): a
   growing output buffer and the pieces that write JSON text exactly as
   fastingest.jsonout.dumps (orjson) writes it. See fastingest/transcode.py, the pure
   twin, for the rules. Every writer returns 0, or -1 when memory ran out. */
#ifndef FASTINGEST_TRANSCODE_H
#define FASTINGEST_TRANSCODE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
} ft_out;

static int ft_reserve(ft_out *o, Py_ssize_t more) {
    Py_ssize_t need = o->len + more, cap;
    char *grown;
    if (need <= o->cap) return 0;
    cap = o->cap ? o->cap : 256;
    while (cap < need) cap *= 2;
    grown = (char *)realloc(o->buf, (size_t)cap);
    if (grown == NULL) return -1;
    o->buf = grown;
    o->cap = cap;
    return 0;
}

static inline int ft_put(ft_out *o, const char *s, Py_ssize_t n) {
    if (ft_reserve(o, n) < 0) return -1;
    memcpy(o->buf + o->len, s, (size_t)n);
    o->len += n;
    return 0;
}

static inline int ft_putc(ft_out *o, char c) {
    if (o->len == o->cap && ft_reserve(o, 1) < 0) return -1;
    o->buf[o->len++] = c;
    return 0;
}

/* orjson's escapes of the bytes below 0x20 (\b \t \n \f \r by name, the others as
   \u00xx in lowercase hex); '"' and '\\' are escaped with a backslash. */
static const char *const ft_controls[32] = {
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
    "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f",
    "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
    "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
};

/* orjson's escape of byte c, or NULL when it is written as it is. */
static inline const char *ft_escape(unsigned char c) {
    if (c == '"') return "\\\"";
    if (c == '\\') return "\\\\";
    return c < 0x20 ? ft_controls[c] : NULL;
}

/* A JSON string of the (valid UTF-8) bytes p[0:n]: runs that need no escape copied whole. */
static int ft_put_string(ft_out *o, const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t i = 0, run = 0;
    const char *esc;
    if (ft_reserve(o, n + 2) < 0) return -1;
    o->buf[o->len++] = '"';
    for (i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (ft_put(o, (const char *)p + run, i - run) < 0) return -1;
        esc = ft_escape(c);
        if (ft_put(o, esc, (Py_ssize_t)strlen(esc)) < 0) return -1;
        run = i + 1;
    }
    if (ft_put(o, (const char *)p + run, n - run) < 0) return -1;
    return ft_putc(o, '"');
}

/* Standard base64 with padding, quoted: how bytes (bin values and keys, ext data) are written. */
static int ft_put_base64(ft_out *o, const unsigned char *p, Py_ssize_t n) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    Py_ssize_t i;
    char *w;
    uint32_t v;
    if (ft_reserve(o, (n + 2) / 3 * 4 + 2) < 0) return -1;
    w = o->buf + o->len;
    *w++ = '"';
    for (i = 0; i + 3 <= n; i += 3) {
        v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        *w++ = alphabet[v >> 18]; *w++ = alphabet[(v >> 12) & 63];
        *w++ = alphabet[(v >> 6) & 63]; *w++ = alphabet[v & 63];
    }
    if (n - i == 1) {
        v = (uint32_t)p[i] << 16;
        *w++ = alphabet[v >> 18]; *w++ = alphabet[(v >> 12) & 63]; *w++ = '='; *w++ = '=';
    } else if (n - i == 2) {
        v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8);
        *w++ = alphabet[v >> 18]; *w++ = alphabet[(v >> 12) & 63];
        *w++ = alphabet[(v >> 6) & 63]; *w++ = '=';
    }
    *w++ = '"';
    o->len = w - o->buf;
    return 0;
}

static int ft_put_uint64(ft_out *o, uint64_t v) {
    char digits[20];
    int k = 20;
    do {
        digits[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return ft_put(o, digits + k, 20 - k);
}

static int ft_put_int64(ft_out *o, int64_t v) {
    if (v >= 0) return ft_put_uint64(o, (uint64_t)v);
    if (ft_putc(o, '-') < 0) return -1;
    return ft_put_uint64(o, (uint64_t)0 - (uint64_t)v);
}

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days). */
static void ft_civil(int64_t days, int64_t *y, int *m, int *d) {
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static inline void ft_digits(char *w, uint64_t v, int width) {
    while (width--) {
        w[width] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ", quoted, for seconds within years 0001-9999. */
static int ft_put_timestamp_text(ft_out *o, int64_t seconds, uint32_t nanoseconds) {
    int64_t days = seconds / 86400, rem = seconds % 86400, year;
    int month, day;
    char *w;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    ft_civil(days, &year, &month, &day);
    if (ft_reserve(o, 32) < 0) return -1;
    w = o->buf + o->len;
    w[0] = '"';
    ft_digits(w + 1, (uint64_t)year, 4); w[5] = '-';
    ft_digits(w + 6, (uint64_t)month, 2); w[8] = '-';
    ft_digits(w + 9, (uint64_t)day, 2); w[11] = 'T';
    ft_digits(w + 12, (uint64_t)(rem / 3600), 2); w[14] = ':';
    ft_digits(w + 15, (uint64_t)(rem / 60 % 60), 2); w[17] = ':';
    ft_digits(w + 18, (uint64_t)(rem % 60), 2); w[20] = '.';
    ft_digits(w + 21, nanoseconds, 9); w[30] = 'Z'; w[31] = '"';
    o->len += 32;
    return 0;
}

/* A float as orjson writes it, from Python's repr of it (PyOS_double_to_string 'r'):
   the same digits; fixed notation for decimal exponents -5 to 15 (repr switches at -4),
   else "<mantissa>e<sign><exponent>" without leading zeros in the exponent. */
static int ft_put_float_repr(ft_out *o, const char *repr) {
    const char *e = strchr(repr, 'e');
    const char *m;
    long power;
    char digits[32];
    int k = 0;
    if (e == NULL) return ft_put(o, repr, (Py_ssize_t)strlen(repr));
    power = strtol(e + 1, NULL, 10);
    if (power == -5) {   /* 1.2345e-05 -> 0.000012345 */
        m = repr;
        if (*m == '-' && ft_putc(o, '-') < 0) return -1;
        if (*m == '-') m++;
        for (; m < e && k < 31; m++)
            if (*m != '.') digits[k++] = *m;
        if (ft_put(o, "0.0000", 6) < 0) return -1;
        return ft_put(o, digits, k);
    }
    if (ft_put(o, repr, e - repr) < 0 || ft_putc(o, 'e') < 0
            || ft_putc(o, power > 0 ? '+' : '-') < 0)
        return -1;
    return ft_put_uint64(o, (uint64_t)(power > 0 ? power : -power));
}

#endif /* FASTINGEST_TRANSCODE_H */
