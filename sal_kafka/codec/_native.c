/* The native core of the compiled codec: one SAL topic's Avro encoder and
 * decoder, driven by a table of its fields.
 *
 * Semantics are the generated Python engine's (sal_kafka/codec/_compiled.py),
 * by construction: this core takes only the common case (exact Python types,
 * arrays of exactly Count items in one block, values in range) and hands
 * anything else, unchanged, to that engine's function, which encodes it,
 * decodes it or raises the error that names the field. So this file never
 * words an error and never accepts what the Python engine refuses.
 *
 * Built by the package's own build (pyproject.toml, an optional extension):
 * where no compiler is present the Python engine is used alone.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

enum { K_BOOL = 0, K_INT = 1, K_LONG = 2, K_FLOAT = 3, K_DOUBLE = 4, K_STRING = 5 };

/* The Python engine's functions, in this order. */
enum { FB_ENCODE_DICT, FB_ENCODE_OBJECT, FB_STRICT_DICT, FB_STRICT_OBJECT, FB_DECODE_DICT, FB_DECODE_INTO, FB_COUNT };

typedef struct {
    PyObject *name;       /* interned: dict lookups hit the cached hash */
    int kind;
    Py_ssize_t count;     /* 1: a scalar; > 1: an array of exactly count items */
    int nullable;         /* ["null", T] */
    long long lo, hi;     /* strict: the SAL type's range (ints) */
    Py_ssize_t max_length; /* strict: IDL_Size of a string, 0 for none */
} Field;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    Field *fields;
    PyObject *kwnames;    /* tuple of the field names: decode_into's keywords */
    PyObject *fallback[FB_COUNT];
} Program;

/* ------------------------------------------------------------------ output buffer */

typedef struct {
    char *p;
    Py_ssize_t len, cap;
    char stack[1024];
} Buf;

static inline void buf_init(Buf *b) {
    b->p = b->stack;
    b->len = 0;
    b->cap = (Py_ssize_t)sizeof(b->stack);
}

static inline void buf_free(Buf *b) {
    if (b->p != b->stack) PyMem_Free(b->p);
}

static int buf_grow(Buf *b, Py_ssize_t need) {
    Py_ssize_t cap = b->cap;
    while (cap - b->len < need) cap *= 2;
    char *p;
    if (b->p == b->stack) {
        p = PyMem_Malloc((size_t)cap);
        if (p) memcpy(p, b->stack, (size_t)b->len);
    } else {
        p = PyMem_Realloc(b->p, (size_t)cap);
    }
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Room for ``need`` more bytes. */
#define RESERVE(b, need) \
    if ((b)->cap - (b)->len < (need) && buf_grow((b), (need)) < 0) return -1

static inline void put_varint(Buf *b, long long v) {
    unsigned long long z = ((unsigned long long)v << 1) ^ (unsigned long long)(v >> 63);
    unsigned char *p = (unsigned char *)b->p + b->len;
    while (z > 0x7F) {
        *p++ = (unsigned char)((z & 0x7F) | 0x80);
        z >>= 7;
    }
    *p++ = (unsigned char)z;
    b->len = (char *)p - b->p;
}

/* ------------------------------------------------------------------ encoding
 *
 * Each writer returns 0, or -1 for "not the common case" (any Python error
 * it raised is cleared by the caller, which then calls the Python engine).
 */

static inline int number_as_double(PyObject *v, int exact_float, double *out) {
    if (PyFloat_CheckExact(v)) {
        *out = PyFloat_AS_DOUBLE(v);
        return 0;
    }
    if (!exact_float && PyLong_Check(v)) { /* struct packs ints (and bools) into doubles */
        *out = PyLong_AsDouble(v);
        return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
    }
    return -1;
}

static inline int write_real(Buf *b, int kind, double d) {
    RESERVE(b, 8);
    unsigned char *p = (unsigned char *)b->p + b->len;
    if (kind == K_FLOAT) {
        if (PyFloat_Pack4(d, (char *)p, 1) < 0) return -1; /* float32 overflow */
        b->len += 4;
    } else {
        PyFloat_Pack8(d, (char *)p, 1);
        b->len += 8;
    }
    return 0;
}

static inline int int_value(PyObject *v, int strict, const Field *f, long long *out) {
    if (!PyLong_Check(v)) return -1;       /* a float, a numpy scalar: the Python engine decides */
    if (strict && PyBool_Check(v)) return -1;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) return -1;
    if (strict) {
        if (x < f->lo || x > f->hi) return -1;
    } else if (f->kind == K_INT && (x < INT32_MIN || x > INT32_MAX)) {
        return -1;                          /* never beyond an Avro int */
    }
    *out = x;
    return 0;
}

static int write_scalar(Buf *b, const Field *f, PyObject *v, int strict) {
    switch (f->kind) {
    case K_DOUBLE:
    case K_FLOAT: {
        double d;
        if (number_as_double(v, strict, &d) < 0) return -1;
        return write_real(b, f->kind, d);
    }
    case K_BOOL: {
        int t;
        if (v == Py_True) t = 1;
        else if (v == Py_False) t = 0;
        else if (strict) return -1;
        else if ((t = PyObject_IsTrue(v)) < 0) return -1;
        RESERVE(b, 1);
        b->p[b->len++] = (char)t;
        return 0;
    }
    case K_INT:
    case K_LONG: {
        long long x;
        if (int_value(v, strict, f, &x) < 0) return -1;
        RESERVE(b, 10);
        put_varint(b, x);
        return 0;
    }
    case K_STRING: {
        if (!PyUnicode_CheckExact(v)) return -1;
        if (strict && f->max_length && PyUnicode_GET_LENGTH(v) > f->max_length) return -1;
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(v, &n); /* NULL for lone surrogates */
        if (!s) return -1;
        RESERVE(b, n + 10);
        put_varint(b, n);
        memcpy(b->p + b->len, s, (size_t)n);
        b->len += n;
        return 0;
    }
    }
    return -1;
}

static int write_array(Buf *b, const Field *f, PyObject *v, int strict) {
    Py_ssize_t n;
    PyObject **items;
    if (PyList_CheckExact(v)) {
        n = PyList_GET_SIZE(v);
        items = ((PyListObject *)v)->ob_item;
    } else if (PyTuple_CheckExact(v)) {
        n = PyTuple_GET_SIZE(v);
        items = ((PyTupleObject *)v)->ob_item;
    } else {
        return -1; /* numpy arrays and other sequences: the Python engine's general path */
    }
    if (n != f->count) return -1;
    Py_ssize_t width = f->kind == K_DOUBLE ? 8 : f->kind == K_FLOAT ? 4 : f->kind == K_BOOL ? 1 : 10;
    RESERVE(b, 11 + n * width);
    put_varint(b, n);
    char *p = b->p + b->len;
    switch (f->kind) {
    case K_DOUBLE:
    case K_FLOAT:
        for (Py_ssize_t i = 0; i < n; i++) {
            double d;
            /* the Python engine's struct call takes ints and bools in any mode */
            if (number_as_double(items[i], 0, &d) < 0) return -1;
            if (f->kind == K_FLOAT) {
                if (PyFloat_Pack4(d, p, 1) < 0) return -1;
                p += 4;
            } else {
                PyFloat_Pack8(d, p, 1);
                p += 8;
            }
        }
        b->len = p - b->p;
        break;
    case K_BOOL:
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *x = items[i];
            int t;
            if (x == Py_True) t = 1;
            else if (x == Py_False) t = 0;
            else if (strict) return -1;
            else if ((t = PyObject_IsTrue(x)) < 0) return -1;
            *p++ = (char)t;
        }
        b->len = p - b->p;
        break;
    case K_INT:
    case K_LONG:
        for (Py_ssize_t i = 0; i < n; i++) {
            long long x;
            PyObject *item = items[i];
            if (!PyLong_Check(item)) return -1;
            int overflow;
            x = PyLong_AsLongLongAndOverflow(item, &overflow);
            if (overflow || (x == -1 && PyErr_Occurred())) return -1;
            if (strict) { /* the struct call of strict takes bools as 0/1 */
                if (x < f->lo || x > f->hi) return -1;
            } else if (f->kind == K_INT && (x < INT32_MIN || x > INT32_MAX)) {
                return -1;
            }
            put_varint(b, x);
        }
        break;
    default:
        return -1;
    }
    b->p[b->len++] = 0; /* end of the array's one block */
    return 0;
}

static inline int write_field(Buf *b, const Field *f, PyObject *v, int strict) {
    if (f->count > 1) return write_array(b, f, v, strict);
    if (f->nullable) {
        RESERVE(b, 1);
        if (v == Py_None) {
            b->p[b->len++] = 0;
            return 0;
        }
        b->p[b->len++] = 2;
        if (strict && (f->kind == K_DOUBLE || f->kind == K_FLOAT) && !PyFloat_CheckExact(v)) return -1;
        return write_scalar(b, f, v, strict);
    }
    return write_scalar(b, f, v, strict);
}

static PyObject *encode(Program *self, PyObject *r, int style_object, int strict) {
    int which = strict ? (style_object ? FB_STRICT_OBJECT : FB_STRICT_DICT)
                       : (style_object ? FB_ENCODE_OBJECT : FB_ENCODE_DICT);
    if (!style_object && (!PyDict_CheckExact(r) || PyDict_GET_SIZE(r) != self->n))
        return PyObject_CallOneArg(self->fallback[which], r);
    Buf b;
    buf_init(&b);
    for (Py_ssize_t i = 0; i < self->n; i++) {
        const Field *f = &self->fields[i];
        PyObject *v;
        int rc;
        if (style_object) {
            v = PyObject_GetAttr(r, f->name);
            if (!v) goto fallback;
            rc = write_field(&b, f, v, strict);
            Py_DECREF(v);
        } else {
            v = PyDict_GetItemWithError(r, f->name); /* borrowed */
            if (!v) goto fallback;
            rc = write_field(&b, f, v, strict);
        }
        if (rc < 0) goto fallback;
    }
    PyObject *out = PyBytes_FromStringAndSize(b.p, b.len);
    buf_free(&b);
    return out;
fallback:
    buf_free(&b);
    PyErr_Clear();
    return PyObject_CallOneArg(self->fallback[which], r);
}

static PyObject *encode_dict(Program *self, PyObject *r) { return encode(self, r, 0, 0); }
static PyObject *encode_object(Program *self, PyObject *r) { return encode(self, r, 1, 0); }
static PyObject *encode_strict_dict(Program *self, PyObject *r) { return encode(self, r, 0, 1); }
static PyObject *encode_strict_object(Program *self, PyObject *r) { return encode(self, r, 1, 1); }

/* ------------------------------------------------------------------ decoding
 *
 * Readers return a new reference, or NULL for "not the common case" (several
 * blocks, a truncated or corrupt body): the Python engine then reads the
 * whole body again and decodes it or raises the error that says where.
 */

typedef struct {
    const unsigned char *p, *end;
} Reader;

static inline int get_varint(Reader *r, long long *out) {
    unsigned long long z = 0;
    int shift = 0;
    while (r->p < r->end) {
        unsigned char c = *r->p++;
        if (shift == 63 && c > 1) return -1; /* beyond 64 bits */
        z |= (unsigned long long)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *out = (long long)(z >> 1) ^ -(long long)(z & 1);
            return 0;
        }
        shift += 7;
        if (shift > 63) return -1;
    }
    return -1;
}

static PyObject *read_scalar(Reader *r, int kind) {
    switch (kind) {
    case K_DOUBLE:
        if (r->end - r->p < 8) return NULL;
        r->p += 8;
        return PyFloat_FromDouble(PyFloat_Unpack8((const char *)r->p - 8, 1));
    case K_FLOAT:
        if (r->end - r->p < 4) return NULL;
        r->p += 4;
        return PyFloat_FromDouble(PyFloat_Unpack4((const char *)r->p - 4, 1));
    case K_BOOL: {
        if (r->p >= r->end || *r->p > 1) return NULL;
        PyObject *t = *r->p++ ? Py_True : Py_False;
        Py_INCREF(t);
        return t;
    }
    case K_INT:
    case K_LONG: {
        long long x;
        if (get_varint(r, &x) < 0) return NULL;
        return PyLong_FromLongLong(x);
    }
    case K_STRING: {
        long long n;
        if (get_varint(r, &n) < 0 || n < 0 || n > r->end - r->p) return NULL;
        const char *s = (const char *)r->p;
        r->p += n;
        return PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, NULL);
    }
    }
    return NULL;
}

static PyObject *read_array(Reader *r, const Field *f) {
    long long n;
    if (get_varint(r, &n) < 0 || n != f->count) return NULL;
    Py_ssize_t width = f->kind == K_DOUBLE ? 8 : f->kind == K_FLOAT ? 4 : 1; /* ints: at least 1 */
    if (r->end - r->p < n * width + 1) return NULL;
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (!list) return NULL;
    PyObject **items = ((PyListObject *)list)->ob_item;
    Py_ssize_t i = 0;
    switch (f->kind) {
    case K_DOUBLE:
        for (; i < n; i++, r->p += 8)
            if (!(items[i] = PyFloat_FromDouble(PyFloat_Unpack8((const char *)r->p, 1)))) goto fail;
        break;
    case K_FLOAT:
        for (; i < n; i++, r->p += 4)
            if (!(items[i] = PyFloat_FromDouble(PyFloat_Unpack4((const char *)r->p, 1)))) goto fail;
        break;
    case K_BOOL:
        for (; i < n; i++) {
            unsigned char c = *r->p++;
            if (c > 1) goto fail;
            items[i] = c ? Py_True : Py_False;
            Py_INCREF(items[i]);
        }
        break;
    case K_INT:
    case K_LONG:
        for (; i < n; i++) {
            long long x;
            if (get_varint(r, &x) < 0 || !(items[i] = PyLong_FromLongLong(x))) goto fail;
        }
        break;
    default:
        goto fail;
    }
    if (r->p >= r->end || *r->p != 0) goto fail; /* another block follows: the general path */
    r->p++;
    return list;
fail:
    /* PyList_New left the unread items NULL, which list dealloc skips */
    Py_DECREF(list);
    return NULL;
}

static inline PyObject *read_field(Reader *r, const Field *f) {
    if (f->count > 1) return read_array(r, f);
    if (f->nullable) {
        if (r->p >= r->end) return NULL;
        unsigned char branch = *r->p++;
        if (branch == 0) Py_RETURN_NONE;
        if (branch != 2) return NULL;
    }
    return read_scalar(r, f->kind);
}

/* Read every field into ``values``; 0, or -1 with nothing held. */
static int read_all(Program *self, PyObject *data, PyObject **values) {
    Reader r;
    r.p = (const unsigned char *)PyBytes_AS_STRING(data);
    r.end = r.p + PyBytes_GET_SIZE(data);
    Py_ssize_t i = 0;
    for (; i < self->n; i++) {
        if (!(values[i] = read_field(&r, &self->fields[i]))) goto fail;
    }
    if (r.p != r.end) goto fail; /* bytes after the record */
    return 0;
fail:
    while (i-- > 0) Py_DECREF(values[i]);
    PyErr_Clear();
    return -1;
}

#define STACK_FIELDS 128

static PyObject *decode_dict(Program *self, PyObject *data) {
    if (!PyBytes_CheckExact(data)) return PyObject_CallOneArg(self->fallback[FB_DECODE_DICT], data);
    PyObject *stack[STACK_FIELDS];
    PyObject **values = self->n <= STACK_FIELDS ? stack : PyMem_Malloc(sizeof(PyObject *) * (size_t)self->n);
    if (!values) return PyErr_NoMemory();
    PyObject *out = NULL;
    if (read_all(self, data, values) < 0) {
        out = PyObject_CallOneArg(self->fallback[FB_DECODE_DICT], data);
        goto done;
    }
#if PY_VERSION_HEX < 0x030D0000
    out = _PyDict_NewPresized(self->n); /* one allocation, no resize while filling */
#else
    out = PyDict_New();
#endif
    for (Py_ssize_t i = 0; i < self->n; i++) {
        if (out && PyDict_SetItem(out, self->fields[i].name, values[i]) < 0) Py_CLEAR(out);
        Py_DECREF(values[i]);
    }
done:
    if (values != stack) PyMem_Free(values);
    return out;
}

static PyObject *decode_into(Program *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "decode_into(data, make) takes 2 arguments");
        return NULL;
    }
    PyObject *data = args[0], *make = args[1];
    if (!PyBytes_CheckExact(data)) return PyObject_Vectorcall(self->fallback[FB_DECODE_INTO], args, 2, NULL);
    PyObject *stack[STACK_FIELDS];
    PyObject **values = self->n <= STACK_FIELDS ? stack : PyMem_Malloc(sizeof(PyObject *) * (size_t)self->n);
    if (!values) return PyErr_NoMemory();
    PyObject *out;
    if (read_all(self, data, values) < 0) {
        out = PyObject_Vectorcall(self->fallback[FB_DECODE_INTO], args, 2, NULL);
    } else {
        /* make(name=value, ...): keywords straight from the table, no dict */
        out = PyObject_Vectorcall(make, values, 0, self->kwnames);
        for (Py_ssize_t i = 0; i < self->n; i++) Py_DECREF(values[i]);
    }
    if (values != stack) PyMem_Free(values);
    return out;
}

/* ------------------------------------------------------------------ the type */

static int Program_traverse(Program *self, visitproc visit, void *arg) {
    Py_VISIT(self->kwnames);
    for (int i = 0; i < FB_COUNT; i++) Py_VISIT(self->fallback[i]);
    return 0;
}

static int Program_clear(Program *self) {
    Py_CLEAR(self->kwnames);
    for (int i = 0; i < FB_COUNT; i++) Py_CLEAR(self->fallback[i]);
    return 0;
}

static void Program_dealloc(Program *self) {
    PyObject_GC_UnTrack(self);
    Program_clear(self);
    if (self->fields) {
        for (Py_ssize_t i = 0; i < self->n; i++) Py_XDECREF(self->fields[i].name);
        PyMem_Free(self->fields);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Program(fields, fallbacks): ``fields`` a sequence of
 * (name, kind, count, nullable, lo, hi, max_length); ``fallbacks`` the
 * Python engine's six functions (encode_dict, encode_object,
 * encode_strict_dict, encode_strict_object, decode_dict, decode_into). */
static PyObject *Program_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *spec, *fallbacks;
    static char *kwlist[] = {"fields", "fallbacks", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO:Program", kwlist, &spec, &fallbacks)) return NULL;
    PyObject *seq = PySequence_Fast(spec, "fields must be a sequence");
    if (!seq) return NULL;
    PyObject *fbs = PySequence_Fast(fallbacks, "fallbacks must be a sequence");
    if (!fbs) {
        Py_DECREF(seq);
        return NULL;
    }
    Program *self = NULL;
    if (PySequence_Fast_GET_SIZE(fbs) != FB_COUNT) {
        PyErr_Format(PyExc_ValueError, "expected %d fallbacks", FB_COUNT);
        goto error;
    }
    self = (Program *)type->tp_alloc(type, 0);
    if (!self) goto error;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    self->fields = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Field));
    if (!self->fields) {
        PyErr_NoMemory();
        goto error;
    }
    self->kwnames = PyTuple_New(n);
    if (!self->kwnames) goto error;
    for (Py_ssize_t i = 0; i < n; i++) {
        Field *f = &self->fields[i];
        PyObject *name;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "UinpLLn:field", &name, &f->kind, &f->count,
                              &f->nullable, &f->lo, &f->hi, &f->max_length))
            goto error;
        if (f->kind < K_BOOL || f->kind > K_STRING || f->count < 1 || (f->count > 1 && f->kind == K_STRING)) {
            PyErr_Format(PyExc_ValueError, "field %R: unsupported kind %d, count %zd", name, f->kind, f->count);
            goto error;
        }
        Py_INCREF(name);
        PyUnicode_InternInPlace(&name);
        f->name = name;
        self->n = i + 1;
        Py_INCREF(name);
        PyTuple_SET_ITEM(self->kwnames, i, name);
    }
    for (int i = 0; i < FB_COUNT; i++) {
        PyObject *fb = PySequence_Fast_GET_ITEM(fbs, i);
        if (!PyCallable_Check(fb)) {
            PyErr_SetString(PyExc_TypeError, "fallbacks must be callable");
            goto error;
        }
        Py_INCREF(fb);
        self->fallback[i] = fb;
    }
    Py_DECREF(seq);
    Py_DECREF(fbs);
    return (PyObject *)self;
error:
    Py_XDECREF(self);
    Py_DECREF(seq);
    Py_DECREF(fbs);
    return NULL;
}

static PyMethodDef Program_methods[] = {
    {"encode_dict", (PyCFunction)encode_dict, METH_O, "record dict -> Avro body"},
    {"encode_object", (PyCFunction)encode_object, METH_O, "object with the fields as attributes -> Avro body"},
    {"encode_strict_dict", (PyCFunction)encode_strict_dict, METH_O, "encode_dict with strict validation"},
    {"encode_strict_object", (PyCFunction)encode_strict_object, METH_O, "encode_object with strict validation"},
    {"decode_dict", (PyCFunction)decode_dict, METH_O, "Avro body -> dict"},
    {"decode_into", (PyCFunction)(void (*)(void))decode_into, METH_FASTCALL, "(Avro body, make) -> make(**fields)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ProgramType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sal_kafka.codec._native.Program",
    .tp_basicsize = sizeof(Program),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One topic's Avro encoder and decoder (the native core of the compiled engine).",
    .tp_new = Program_new,
    .tp_dealloc = (destructor)Program_dealloc,
    .tp_traverse = (traverseproc)Program_traverse,
    .tp_clear = (inquiry)Program_clear,
    .tp_methods = Program_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sal_kafka.codec._native", "The native core of sal-kafka's compiled Avro codec.", -1, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&ProgramType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ProgramType);
    if (PyModule_AddObject(m, "Program", (PyObject *)&ProgramType) < 0) {
        Py_DECREF(&ProgramType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
