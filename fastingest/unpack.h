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
   most keys cost a hash and a compare instead of a new str, and every event shares the
   same key objects (as msgpack-python's interned keys do). The cache is 2-way set
   associative: a key's hash picks a set of two slots, and the two most recently added
   keys of a set both stay. With one slot per key, two keys of the same event that
   collide (the benchmark's "message" and "path") evicted each other on every event,
   making 2 new str per event; with a slot per key and its pair's other slot as the
   overflow, two keys homed in the two slots of one pair kept evicting each other through
   a stale third. Only ASCII keys are cached (their bytes are the str's data, so the
   compare is exact). The cache holds one reference to each (at most FI_KEYS *
   FI_KEY_MAX bytes of text in all). */
#define FI_KEYS 512
#define FI_KEY_MAX 32

static PyObject *fi_keys[FI_KEYS];   /* unused where the GIL is disabled (no cache) */

static inline uint64_t fi_key_word(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}
static inline uint32_t fi_key_half(const unsigned char *p) {
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

static inline uint32_t fi_key_hash(const unsigned char *p, Py_ssize_t n) {
    /* A few overlapping word loads cover every byte of a key of up to 32 bytes (the
       first and last 8, and for over 16 bytes the middle two), mixed by multiplications:
       a key costs a handful of instructions instead of a multiply per byte. Only a
       spread hash matters here: a hit is confirmed by comparing the bytes. */
    uint64_t a, b;
    if (n >= 8) {
        a = fi_key_word(p);
        b = fi_key_word(p + n - 8);
        if (n > 16) {
            a ^= fi_key_word(p + 8) * 0xC2B2AE3D27D4EB4FULL;
            b ^= fi_key_word(p + n - 16) * 0x165667B19E3779F9ULL;
        }
    } else if (n >= 4) {
        a = fi_key_half(p);
        b = fi_key_half(p + n - 4);
    } else if (n > 0) {
        a = (uint64_t)p[0] | ((uint64_t)p[n >> 1] << 8) | ((uint64_t)p[n - 1] << 16);
        b = 0;
    } else {
        a = b = 0;
    }
    uint64_t h = (a ^ (uint64_t)n) * 0x9E3779B97F4A7C15ULL;
    h ^= b * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 32;   /* the final mix: the low bits (the slot) depend on every input bit */
    h *= 0xD6E8FEB86659FD93ULL;
    return (uint32_t)(h ^ (h >> 32));
}

/* Whether the n bytes at a and b (n <= FI_KEY_MAX) are equal: word compares, no call. */
static inline int fi_key_same(const unsigned char *a, const unsigned char *b, Py_ssize_t n) {
    if (n >= 8) {
        for (Py_ssize_t i = 0; i + 8 < n; i += 8)
            if (fi_key_word(a + i) != fi_key_word(b + i))
                return 0;
        return fi_key_word(a + n - 8) == fi_key_word(b + n - 8);
    }
    if (n >= 4)
        return fi_key_half(a) == fi_key_half(b) && fi_key_half(a + n - 4) == fi_key_half(b + n - 4);
    for (Py_ssize_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* A new reference to the str of the UTF-8 bytes p[0:n] (n <= FI_KEY_MAX), from `table`
   (a cache of `size` slots, a power of two: the key cache or the value cache below)
   when it holds them; NULL with an exception for invalid UTF-8. Without the GIL there is
   no cache: every call decodes. */
static inline PyObject *fi_cached_str(PyObject **table, uint32_t size,
                                      const unsigned char *p, Py_ssize_t n) {
#ifndef Py_GIL_DISABLED
    /* The key's set: slots i (its newest key) and j = i + 1 (the one before). */
    uint32_t i = fi_key_hash(p, n) & (size - 2), j = i + 1;
    PyObject *seen = table[i];
    if (seen != NULL && PyUnicode_GET_LENGTH(seen) == n &&
            fi_key_same((const unsigned char *)PyUnicode_DATA(seen), p, n)) {
        Py_INCREF(seen);
        return seen;
    }
    seen = table[j];
    if (seen != NULL && PyUnicode_GET_LENGTH(seen) == n &&
            fi_key_same((const unsigned char *)PyUnicode_DATA(seen), p, n)) {
        Py_INCREF(seen);
        return seen;
    }
#endif
    PyObject *key = PyUnicode_DecodeUTF8((const char *)p, n, NULL);
#ifndef Py_GIL_DISABLED
    if (key != NULL && PyUnicode_IS_COMPACT_ASCII(key)) {
        /* The new key takes the set's first slot, the key there moves to the second
           (whose key goes): the two most recent keys of a set both stay, and a stale key
           cannot hold a slot forever. */
        if (table[i] != NULL)
            Py_XSETREF(table[j], table[i]);
        Py_INCREF(key);
        table[i] = key;
    }
#endif
    return key;
}

/* A map key p[0:n] (n <= FI_KEY_MAX), from the key cache. */
static inline PyObject *fi_key(const unsigned char *p, Py_ssize_t n) {
    return fi_cached_str(fi_keys, FI_KEYS, p, n);
}

/* Short ASCII string values (levels, hosts, methods, tags: log events repeat them) come
   from a cache of their own, as keys do: equal str, one object instead of one per event
   (and one allocation and one free fewer). Separate from the keys' cache so a field of
   ever-new values (ids) cannot evict the keys. Used by the MessagePack and JSON builders
   (each extension module has its own copy of both tables). */
#define FI_VALUES 1024
#define FI_VALUE_MAX 16
static PyObject *fi_values[FI_VALUES];

/* A string value p[0:n] (n <= FI_VALUE_MAX), from the value cache. */
static inline PyObject *fi_value(const unsigned char *p, Py_ssize_t n) {
    return fi_cached_str(fi_values, FI_VALUES, p, n);
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
