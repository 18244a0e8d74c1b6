/* C helpers of the compiled MessagePack builder (_unpack.pyx): the cache of short map
   keys, and direct access to the slots of msgpack.Timestamp. */
#ifndef FASTINGEST_UNPACK_H
#define FASTINGEST_UNPACK_H

#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* Keys of at most FI_KEY_MAX bytes are looked up in a cache of FI_KEYS str objects
   (msgspec's string cache, made 2-way): log events repeat the same few dozen keys, so
   most keys cost a hash and a word compare instead of a new str, and every event shares the
   same key objects (as msgpack-python's interned keys do). A key may sit in its slot or
   its pair's other one: with one slot per key, two keys of the same event that collide
   (the benchmark's "message" and "path") evicted each other on every event, making 2
   new str per event. Only ASCII keys are cached (their bytes are the str's data, so the
   memcmp is exact). The cache holds one reference to each (at most FI_KEYS *
   FI_KEY_MAX bytes of text in all). */
#define FI_KEYS 512
#define FI_KEY_MAX 32

#ifndef Py_GIL_DISABLED
static PyObject *fi_keys[FI_KEYS];
#endif

static inline uint64_t fi_load64(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint32_t fi_load32(const unsigned char *p) {
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/* The bytes p[0:n] (n <= FI_KEY_MAX) as words a hash or a comparison can use: whole
   loads only, never a byte outside p[0:n] (short tails overlap the previous word, as
   xxHash reads short inputs); a byte-by-byte tail stalled every hash on store
   forwarding. Returns the number of words written to w (at most 5). */
static inline int fi_words(const unsigned char *p, Py_ssize_t n, uint64_t *w) {
    int k = 0;
    if (n >= 8) {
        Py_ssize_t i = 0;
        for (; i + 8 <= n; i += 8)
            w[k++] = fi_load64(p + i);
        if (i < n)
            w[k++] = fi_load64(p + n - 8);
    } else if (n >= 4) {
        w[k++] = (uint64_t)fi_load32(p) | ((uint64_t)fi_load32(p + n - 4) << 32);
    } else if (n > 0) {
        w[k++] = (uint64_t)p[0] | ((uint64_t)p[n >> 1] << 8) | ((uint64_t)p[n - 1] << 16);
    }
    return k;
}

static inline uint32_t fi_key_hash(const uint64_t *w, int k, Py_ssize_t n) {
    /* multiply-fold over the words (the length mixed in: tails overlap) */
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    for (int i = 0; i < k; i++)
        h = (h ^ w[i]) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    return (uint32_t)(h ^ (h >> 17));
}

/* Whether the cached key `seen` is the n bytes whose words are w. */
static inline int fi_key_is(PyObject *seen, const uint64_t *w, int k, Py_ssize_t n) {
    uint64_t v[5];
    if (seen == NULL || PyUnicode_GET_LENGTH(seen) != n)
        return 0;
    fi_words((const unsigned char *)PyUnicode_DATA(seen), n, v);
    for (int i = 0; i < k; i++)
        if (v[i] != w[i])
            return 0;
    return 1;
}

/* A new reference to the str of the UTF-8 bytes p[0:n] (n <= FI_KEY_MAX) from `table`
   (a cache of `size` slots, a power of two) when it holds them; NULL with an exception
   for invalid UTF-8. */
static inline PyObject *fi_cached_str(PyObject **table, uint32_t size,
                                      const unsigned char *p, Py_ssize_t n) {
#ifndef Py_GIL_DISABLED
    uint64_t w[5];
    int k = fi_words(p, n, w);
    uint32_t i = fi_key_hash(w, k, n) & (size - 1), j = i ^ 1;
    /* equal words of equal lengths are equal bytes: the words cover all n bytes */
    if (fi_key_is(table[i], w, k, n)) {
        Py_INCREF(table[i]);
        return table[i];
    }
    if (fi_key_is(table[j], w, k, n)) {
        Py_INCREF(table[j]);
        return table[j];
    }
#endif
    PyObject *key = PyUnicode_DecodeUTF8((const char *)p, n, NULL);
#ifndef Py_GIL_DISABLED
    if (key != NULL && PyUnicode_IS_COMPACT_ASCII(key)) {
        /* The new key takes its own slot and the key it displaces moves to the other
           (whose key goes): the two most recent keys of a pair both stay, and a stale
           key cannot hold a slot forever. */
        if (table[i] != NULL)
            Py_XSETREF(table[j], table[i]);
        Py_INCREF(key);
        table[i] = key;
    }
#endif
    return key;
}

/* A map key p[0:n] (n <= FI_KEY_MAX) from the key cache. */
static inline PyObject *fi_key(const unsigned char *p, Py_ssize_t n) {
#ifndef Py_GIL_DISABLED
    return fi_cached_str(fi_keys, FI_KEYS, p, n);
#else
    return PyUnicode_DecodeUTF8((const char *)p, n, NULL);
#endif
}

/* The byte offset of the object slot `name` of a class with __slots__, or -1 when it
   is not one (then the caller constructs instances the ordinary way). */
static inline Py_ssize_t fi_slot_offset(PyTypeObject *type, const char *name) {
    PyObject *descr = PyDict_GetItemString(type->tp_dict, name);   /* borrowed */
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type))
        return -1;
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX || (member->flags & READONLY))
        return -1;
    return member->offset;
}

/* A new instance of `type` (from its tp_alloc: zeroed, tracked like any instance) with
   its two object slots set: msgpack.Timestamp(seconds, nanoseconds) without running
   __init__, whose checks the caller has already made. Steals neither reference. */
static inline PyObject *fi_new_pair(PyTypeObject *type, Py_ssize_t off_a, PyObject *a,
                                    Py_ssize_t off_b, PyObject *b) {
    PyObject *obj = type->tp_alloc(type, 0);
    if (obj == NULL)
        return NULL;
    Py_INCREF(a);
    *(PyObject **)((char *)obj + off_a) = a;
    Py_INCREF(b);
    *(PyObject **)((char *)obj + off_b) = b;
    return obj;
}

/* Set the object slot at byte offset `off` of `obj` (an instance of the class the
   offset came from) to `value`, as the slot's descriptor would, without the attribute
   lookup: a new reference to `value`, the old one released. */
static inline void fi_set_slot(PyObject *obj, Py_ssize_t off, PyObject *value) {
    PyObject **slot = (PyObject **)((char *)obj + off);
    PyObject *old = *slot;
    Py_INCREF(value);
    *slot = value;
    Py_XDECREF(old);
}

#endif /* FASTINGEST_UNPACK_H */
