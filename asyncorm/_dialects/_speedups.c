/* Binding many rows of parameters in C: an optional extension standing in for the binders
   that base.py generates in Python (``_RowBinder`` for rows of parameter dicts,
   ``_build_positional_binder`` for the ORM's rows of values). The Python code stays, and
   the tests run both (ASYNCORM_NO_EXTENSIONS=1 selects the Python code).

   A Binder turns one row into one driver argument list: per slot, the row's value (by
   name from a dict, or by position), tested in place against the slot's InlineCheck (see
   asyncorm/_sql/types.py) and passed to the slot's processor only when the test fails or
   there is no test. ``flat`` puts the arguments of many rows one after another in one
   list, with no list per row, for an UPDATE joined to its rows of values. Every error is
   the one the generated Python raises: a missing name is a KeyError, and a processor's
   InvalidValue propagates, for the caller to redo the rows the general way. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    PyObject *name;       /* rows of dicts: the parameter's name; else NULL */
    Py_ssize_t position;  /* rows of values: the value's index */
    PyObject *fallback;   /* a missing name's value (``r.get(name, d)``); NULL: required */
    PyObject *processor;  /* NULL: the value goes as it is */
    PyTypeObject *cls;    /* the check's exact class; NULL: no check, always processed */
    int has_range;        /* int: low <= value <= high */
    long long low, high;
    Py_ssize_t max_length; /* str: at most this many characters; -1: any */
    int ascii;            /* str: ASCII only */
    int no_nul;           /* str: no NUL character */
    int no_nan;           /* float: not NaN */
} Slot;

typedef struct {
    PyObject_HEAD
    Slot *slots;
    Py_ssize_t count;
    int by_name;  /* rows are dicts read by name; else sequences read by position */
    int as_list;  /* each row's arguments as a list; else a tuple */
} Binder;

/* Whether ``value``, already of the check's exact class, passes the check's tests. */
static int
passes(const Slot *slot, PyObject *value)
{
    if (slot->has_range) {
        int overflow;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow || (number == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return 0;  /* out of any range: the processor says so */
        }
        if (number < slot->low || number > slot->high) {
            return 0;
        }
    }
    if (slot->no_nan && Py_IS_NAN(PyFloat_AS_DOUBLE(value))) {
        return 0;
    }
    if (slot->cls == &PyUnicode_Type) {
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(value) < 0) {
            PyErr_Clear();
            return 0;
        }
#endif
        Py_ssize_t length = PyUnicode_GET_LENGTH(value);
        if (slot->max_length >= 0 && length > slot->max_length) {
            return 0;
        }
        if (slot->ascii && !PyUnicode_IS_ASCII(value)) {
            return 0;
        }
        if (slot->no_nul && PyUnicode_FindChar(value, 0, 0, length, 1) != -1) {
            PyErr_Clear();  /* -2 (an error) fails the test too */
            return 0;
        }
    }
    return 1;
}

/* The argument for ``value`` (borrowed): a new reference, or NULL with the error set. */
static PyObject *
bind_value(const Slot *slot, PyObject *value)
{
    if (slot->processor == NULL ||
        (slot->cls != NULL && Py_TYPE(value) == slot->cls && passes(slot, value))) {
        return Py_NewRef(value);
    }
    return PyObject_CallOneArg(slot->processor, value);
}

/* The row's raw value for ``slot``: a new reference, or NULL with the error set. */
static PyObject *
read_value(const Binder *self, const Slot *slot, PyObject *row)
{
    if (self->by_name) {
        PyObject *value = PyDict_GetItemWithError(row, slot->name);
        if (value != NULL) {
            return Py_NewRef(value);
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
        if (slot->fallback != NULL) {
            return Py_NewRef(slot->fallback);
        }
        PyErr_SetObject(PyExc_KeyError, slot->name);
        return NULL;
    }
    if (PyTuple_CheckExact(row) && slot->position < PyTuple_GET_SIZE(row)) {
        return Py_NewRef(PyTuple_GET_ITEM(row, slot->position));
    }
    if (PyList_CheckExact(row) && slot->position < PyList_GET_SIZE(row)) {
        return Py_NewRef(PyList_GET_ITEM(row, slot->position));
    }
    return PySequence_GetItem(row, slot->position);  /* IndexError when too short */
}

/* Binds ``row`` into ``items``, ``self->count`` slots that are NULL: 0, or -1 with the
   error set (what was bound so far stays in ``items``, for their owner to release). */
static int
bind_row_into(const Binder *self, PyObject *row, PyObject **items)
{
    if (self->by_name && !PyDict_CheckExact(row)) {
        PyErr_Format(PyExc_TypeError, "a row of parameters must be a dict, not %.100s",
                     Py_TYPE(row)->tp_name);
        return -1;
    }
    for (Py_ssize_t i = 0; i < self->count; i++) {
        const Slot *slot = &self->slots[i];
        PyObject *value = read_value(self, slot, row);
        if (value == NULL) {
            return -1;
        }
        items[i] = bind_value(slot, value);
        Py_DECREF(value);
        if (items[i] == NULL) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
bind_row(const Binder *self, PyObject *row)
{
    PyObject *args = self->as_list ? PyList_New(self->count) : PyTuple_New(self->count);
    if (args != NULL && bind_row_into(self, row, PySequence_Fast_ITEMS(args)) < 0) {
        Py_CLEAR(args);
    }
    return args;
}

/* A Binder the collector has cleared (or one never initialized) has no slots. */
static int
check_ready(const Binder *self)
{
    if (self->slots == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this Binder has no slots");
        return -1;
    }
    return 0;
}

static PyObject *
Binder_one(Binder *self, PyObject *row)
{
    if (check_ready(self) < 0) {
        return NULL;
    }
    return bind_row(self, row);
}

/* The arguments of every row of ``rows``: a list of one argument sequence per row, or
   (``flat``) one list of rows x slots arguments, row after row. */
static PyObject *
bind_rows(Binder *self, PyObject *rows, int flat)
{
    if (check_ready(self) < 0) {
        return NULL;
    }
    PyObject *sequence = PySequence_Fast(rows, "rows must be a sequence");
    if (sequence == NULL) {
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    PyObject *result = NULL;
    if (flat && self->count > 0 && count > PY_SSIZE_T_MAX / self->count) {
        PyErr_NoMemory();
    }
    else {
        result = PyList_New(flat ? count * self->count : count);
    }
    for (Py_ssize_t i = 0; result != NULL && i < count; i++) {
        /* A processor may run arbitrary code: the row is held, and the rows re-measured. */
        if (i >= PySequence_Fast_GET_SIZE(sequence)) {
            PyErr_SetString(PyExc_RuntimeError, "the rows changed size while being bound");
            Py_CLEAR(result);
            break;
        }
        PyObject *row = Py_NewRef(PySequence_Fast_GET_ITEM(sequence, i));
        int failed;
        if (flat) {
            failed = bind_row_into(self, row, PySequence_Fast_ITEMS(result) + i * self->count);
        }
        else {
            PyObject *args = bind_row(self, row);
            failed = args == NULL;
            if (!failed) {
                PyList_SET_ITEM(result, i, args);
            }
        }
        Py_DECREF(row);
        if (failed) {
            Py_CLEAR(result);
        }
    }
    Py_DECREF(sequence);
    return result;
}

static PyObject *
Binder_many(Binder *self, PyObject *rows)
{
    return bind_rows(self, rows, 0);
}

static PyObject *
Binder_flat(Binder *self, PyObject *rows)
{
    return bind_rows(self, rows, 1);
}

/* -- construction ----------------------------------------------------------------------- */

static int
long_attribute(PyObject *check, const char *name, int *present, long long *out)
{
    PyObject *value = PyObject_GetAttrString(check, name);
    if (value == NULL) {
        return -1;
    }
    *present = value != Py_None;
    if (*present) {
        *out = PyLong_AsLongLong(value);
        if (*out == -1 && PyErr_Occurred()) {
            Py_DECREF(value);
            return -1;
        }
    }
    Py_DECREF(value);
    return 0;
}

static int
flag_attribute(PyObject *check, const char *name, int *out)
{
    PyObject *value = PyObject_GetAttrString(check, name);
    if (value == NULL) {
        return -1;
    }
    *out = PyObject_IsTrue(value);
    Py_DECREF(value);
    return *out < 0 ? -1 : 0;
}

/* Fill ``slot`` from an InlineCheck: its class and tests. */
static int
read_check(Slot *slot, PyObject *check)
{
    PyObject *cls = PyObject_GetAttrString(check, "cls");
    if (cls == NULL) {
        return -1;
    }
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "an InlineCheck's cls must be a class");
        Py_DECREF(cls);
        return -1;
    }
    slot->cls = (PyTypeObject *)cls;
    int has_low, has_high, has_length;
    long long max_length = -1;
    if (long_attribute(check, "low", &has_low, &slot->low) < 0 ||
        long_attribute(check, "high", &has_high, &slot->high) < 0 ||
        long_attribute(check, "max_length", &has_length, &max_length) < 0 ||
        flag_attribute(check, "ascii", &slot->ascii) < 0 ||
        flag_attribute(check, "no_nul", &slot->no_nul) < 0 ||
        flag_attribute(check, "no_nan", &slot->no_nan) < 0) {
        return -1;
    }
    slot->has_range = has_low && has_high;
    slot->max_length = has_length ? (Py_ssize_t)max_length : -1;
    if (has_low != has_high || (slot->has_range && slot->cls != &PyLong_Type)) {
        PyErr_SetString(PyExc_TypeError, "a range check needs low and high, and cls int");
        return -1;
    }
    if ((has_length || slot->ascii || slot->no_nul) && slot->cls != &PyUnicode_Type) {
        PyErr_SetString(PyExc_TypeError, "a string check needs cls str");
        return -1;
    }
    if (slot->no_nan && slot->cls != &PyFloat_Type) {
        PyErr_SetString(PyExc_TypeError, "a NaN check needs cls float");
        return -1;
    }
    return 0;
}

static void
free_slots(Binder *self)
{
    Slot *slots = self->slots;
    Py_ssize_t count = self->count;
    self->slots = NULL;
    self->count = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_CLEAR(slots[i].name);
        Py_CLEAR(slots[i].fallback);
        Py_CLEAR(slots[i].processor);
        Py_CLEAR(slots[i].cls);
    }
    PyMem_Free(slots);
}

static int
Binder_init(Binder *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"slots", "by_name", "as_list", NULL};
    PyObject *specs;
    int by_name, as_list;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!pp:Binder", keywords, &PyTuple_Type,
                                     &specs, &by_name, &as_list)) {
        return -1;
    }
    if (self->slots != NULL) {
        PyErr_SetString(PyExc_TypeError, "a Binder is initialized once");
        return -1;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(specs);
    self->slots = PyMem_Calloc(count ? count : 1, sizeof(Slot));
    if (self->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->count = count;
    self->by_name = by_name;
    self->as_list = as_list;
    for (Py_ssize_t i = 0; i < count; i++) {
        /* (name or position, fallback or None, required, processor or None, check or None) */
        PyObject *source, *fallback, *processor, *check;
        int required;
        Slot *slot = &self->slots[i];
        PyObject *spec = PyTuple_GET_ITEM(specs, i);
        if (!PyTuple_Check(spec)) {
            PyErr_SetString(PyExc_TypeError, "a Binder slot is a tuple");
            return -1;
        }
        if (!PyArg_ParseTuple(spec, "OOpOO:Binder slot", &source, &fallback, &required,
                              &processor, &check)) {
            return -1;
        }
        if (by_name) {
            if (!PyUnicode_Check(source)) {
                PyErr_SetString(PyExc_TypeError, "rows of dicts are read by str names");
                return -1;
            }
            slot->name = Py_NewRef(source);
            slot->fallback = required ? NULL : Py_NewRef(fallback);
        }
        else {
            slot->position = PyLong_AsSsize_t(source);
            if (slot->position < 0) {
                if (!PyErr_Occurred()) {
                    PyErr_SetString(PyExc_ValueError, "a position must not be negative");
                }
                return -1;
            }
        }
        slot->processor = processor == Py_None ? NULL : Py_NewRef(processor);
        if (check != Py_None && read_check(slot, check) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
Binder_traverse(Binder *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < self->count; i++) {
        Py_VISIT(self->slots[i].fallback);
        Py_VISIT(self->slots[i].processor);
        Py_VISIT(self->slots[i].cls);
    }
    return 0;
}

static int
Binder_clear(Binder *self)
{
    free_slots(self);
    return 0;
}

static void
Binder_dealloc(Binder *self)
{
    PyObject_GC_UnTrack(self);
    free_slots(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Binder_methods[] = {
    {"one", (PyCFunction)Binder_one, METH_O, "The arguments of one row."},
    {"many", (PyCFunction)Binder_many, METH_O, "The arguments of every row, in a list."},
    {"flat", (PyCFunction)Binder_flat, METH_O,
     "The arguments of every row, one row after another in one list."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BinderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncorm._dialects._speedups.Binder",
    .tp_doc = "Binds rows of parameters for one statement shape (see _speedups.c).",
    .tp_basicsize = sizeof(Binder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Binder_init,
    .tp_dealloc = (destructor)Binder_dealloc,
    .tp_traverse = (traverseproc)Binder_traverse,
    .tp_clear = (inquiry)Binder_clear,
    .tp_methods = Binder_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "asyncorm._dialects._speedups",
    .m_doc = "Binding many rows of parameters in C (see _speedups.c).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&BinderType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Binder", (PyObject *)&BinderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
