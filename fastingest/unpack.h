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
   most keys cost a hash and a memcmp instead of a new str, and every event shares the
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

static inline uint32_t fi_key_hash(const unsigned char *p, Py_ssize_t n) {
    /* FNV-1a over the bytes: short keys, so a byte loop is cheap and spreads well. */
    uint32_t h = 2166136261u ^ (uint32_t)n;
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h ^ (h >> 15);
}

/* A new reference to the str of the UTF-8 bytes p[0:n] (n <= FI_KEY_MAX), from the
   cache when it holds them; NULL with an exception for invalid UTF-8. */
static inline PyObject *fi_key(const unsigned char *p, Py_ssize_t n) {
#ifndef Py_GIL_DISABLED
    uint32_t i = fi_key_hash(p, n) & (FI_KEYS - 1), j = i ^ 1;
    PyObject *seen = fi_keys[i];
    if (seen != NULL && PyUnicode_GET_LENGTH(seen) == n &&
            memcmp(PyUnicode_DATA(seen), p, (size_t)n) == 0) {
        Py_INCREF(seen);
        return seen;
    }
    seen = fi_keys[j];
    if (seen != NULL && PyUnicode_GET_LENGTH(seen) == n &&
            memcmp(PyUnicode_DATA(seen), p, (size_t)n) == 0) {
        Py_INCREF(seen);
        return seen;
    }
#endif
    PyObject *key = PyUnicode_DecodeUTF8((const char *)p, n, NULL);
#ifndef Py_GIL_DISABLED
    if (key != NULL && PyUnicode_IS_COMPACT_ASCII(key)) {
        /* The new key takes its own slot and the key it displaces moves to the other
           (whose key goes): the two most recent keys of a pair both stay, and a stale
           key cannot hold a slot forever. */
        if (fi_keys[i] != NULL)
            Py_XSETREF(fi_keys[j], fi_keys[i]);
        Py_INCREF(key);
        fi_keys[i] = key;
    }
#endif
    return key;
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
