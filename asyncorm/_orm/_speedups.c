/* The ORM's per-object work in C: an optional extension; the Python code it stands in for
   stays, and the tests run both (ASYNCORM_NO_EXTENSIONS=1 selects the Python code).

   - Hydrator: one row layout of one mapped class. ``load_in_place`` turns a buffered
     result's rows into objects through the identity map, as the generated Python row
     loader does (mapper.py, ``_build_row_loader``) for a single-column key without
     populate_existing; ``attach_state`` gives a constructed object its state (the
     generated __init__); ``expire`` is the generated expiry (every commit).
   - ColumnAccess: the base of InstrumentedAttribute, whose __get__ and __set__ it is
     (recording a loaded object's changes; the rarer cases go to its Python ``_set``).
   - forget_session (a session's close) and object_collected (the states' weakref
     callback).
   - A flush's loops over changed objects: extend_column_updates (planning runs of
     one-column changes), release_changes (after it) and linked_states (which objects have
     relationships to follow).

   Slots are read and written through the offsets of their member descriptors, found once
   (``register_state_class`` for InstanceState's, ``register_session_class`` for the
   session's identity map), so an object costs no attribute lookups. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyTypeObject *cls;        /* the mapped class */
    PyObject *state_type;     /* the mapper's InstanceState subclass */
    PyObject *collected;      /* the weakref callback */
    PyObject *names;          /* tuple of attribute names, one per loaded column */
    PyObject *state_args;     /* (obj, collected), refilled per row; see new_state */
    Py_ssize_t *positions;    /* row position of each name; NULL: loads no rows */
    Py_ssize_t count;         /* len(names) */
    Py_ssize_t key_position;  /* row position of the primary key */
    Py_ssize_t object_state;  /* offset of the class's state slot */
} Hydrator;

#define SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

static PyObject *empty_tuple;

/* The offset of an object slot named ``name`` that ``type`` declares via __slots__. */
static int
slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *offset)
{
    PyObject *descriptor = PyObject_GetAttrString((PyObject *)type, name);
    if (descriptor == NULL) {
        return -1;
    }
    int ok = Py_IS_TYPE(descriptor, &PyMemberDescr_Type) &&
             ((PyMemberDescrObject *)descriptor)->d_member->type == T_OBJECT_EX;
    if (ok) {
        *offset = ((PyMemberDescrObject *)descriptor)->d_member->offset;
    }
    Py_DECREF(descriptor);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a __slots__ slot", type->tp_name, name);
        return -1;
    }
    return 0;
}

/* InstanceState's slots, registered once by state.py (``register_state_class``); every
   state class is a subclass with no slots of its own, so the offsets hold for all. */
static PyTypeObject *state_base = NULL;
static Py_ssize_t state_key, state_session, state_committed, state_expired, state_deleted;

/* state.py's NO_VALUE: the old value of an attribute that was never loaded (registered
   with the state class). */
static PyObject *no_value = NULL;

PyDoc_STRVAR(register_state_class_doc,
"register_state_class(cls, no_value)\n--\n\n"
"Read the slot offsets of InstanceState, the base of every state class; ``no_value`` marks\n"
"an attribute that had no loaded value.");

static PyObject *
register_state_class(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "register_state_class(cls, no_value)");
        return NULL;
    }
    PyObject *cls = args[0];
    PyTypeObject *type = (PyTypeObject *)cls;
    if (!PyType_IsSubtype(type, &_PyWeakref_RefType)) {
        PyErr_SetString(PyExc_TypeError, "the state class must subclass weakref.ref");
        return NULL;
    }
    if (slot_offset(type, "key", &state_key) < 0 ||
        slot_offset(type, "session", &state_session) < 0 ||
        slot_offset(type, "committed", &state_committed) < 0 ||
        slot_offset(type, "expired", &state_expired) < 0 ||
        slot_offset(type, "deleted", &state_deleted) < 0) {
        return NULL;
    }
    Py_XSETREF(state_base, (PyTypeObject *)Py_NewRef(cls));
    Py_XSETREF(no_value, Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

/* AsyncSession's ``_identity_map`` slot and IdentityMap's ``_held`` and ``_by_mapper``,
   registered once by session.py (``register_session_class``): a first change and a dying
   object reach their session's dictionaries without attribute lookups (callgrind: 330 and
   430 instructions fewer). */
static PyTypeObject *session_base = NULL, *identity_map_type = NULL;
static Py_ssize_t session_identity_map, identity_map_held, identity_map_by_mapper;

PyDoc_STRVAR(register_session_class_doc,
"register_session_class(session_cls, identity_map_cls)\n--\n\n"
"Read the slot offsets of AsyncSession's identity map and of the identity map's\n"
"dictionaries of held objects and of states by mapper.");

static PyObject *
register_session_class(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0]) || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "register_session_class(session_cls, identity_map_cls)");
        return NULL;
    }
    PyTypeObject *session_type = (PyTypeObject *)args[0], *map_type = (PyTypeObject *)args[1];
    if (slot_offset(session_type, "_identity_map", &session_identity_map) < 0 ||
        slot_offset(map_type, "_held", &identity_map_held) < 0 ||
        slot_offset(map_type, "_by_mapper", &identity_map_by_mapper) < 0) {
        return NULL;
    }
    Py_XSETREF(session_base, (PyTypeObject *)Py_NewRef(session_type));
    Py_XSETREF(identity_map_type, (PyTypeObject *)Py_NewRef(map_type));
    Py_RETURN_NONE;
}

static PyObject *identity_map_name;

/* ``session._identity_map.<name>`` (a new reference): read by offset from a registered
   session and identity map, looked up otherwise. */
static PyObject *
identity_map_part(PyObject *session, Py_ssize_t offset, PyObject *name)
{
    if (session_base != NULL && PyObject_TypeCheck(session, session_base)) {
        PyObject *identity_map = SLOT(session, session_identity_map);
        if (identity_map != NULL && Py_IS_TYPE(identity_map, identity_map_type) &&
            SLOT(identity_map, offset) != NULL) {
            return Py_NewRef(SLOT(identity_map, offset));
        }
    }
    PyObject *identity_map = PyObject_GetAttr(session, identity_map_name);
    if (identity_map == NULL) {
        return NULL;
    }
    PyObject *part = PyObject_GetAttr(identity_map, name);
    Py_DECREF(identity_map);
    return part;
}

/* Whether ``state`` is a registered state, so its slots may be read by offset. */
static inline int
is_state(PyObject *state)
{
    return state_base != NULL && PyObject_TypeCheck(state, state_base);
}

static int
check_state(PyObject *state)
{
    if (is_state(state)) {
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "expected an InstanceState, got %s (is the state class "
                 "registered?)", Py_TYPE(state)->tp_name);
    return -1;
}

/* A Hydrator the collector cleared (breaking a cycle) has nothing left to work with. */
static int
check_hydrator(Hydrator *self)
{
    if (self->cls != NULL && self->state_type != NULL && self->names != NULL) {
        return 0;
    }
    PyErr_SetString(PyExc_RuntimeError, "this Hydrator was cleared");
    return -1;
}

/* A mapper holds its hydrators and its class holds the mapper: a cycle the collector must
   be able to break when a mapped class goes away. */
static int
Hydrator_traverse(Hydrator *self, visitproc visit, void *arg)
{
    Py_VISIT(self->cls);
    Py_VISIT(self->state_type);
    Py_VISIT(self->collected);
    Py_VISIT(self->names);
    Py_VISIT(self->state_args);
    return 0;
}

static int
Hydrator_clear(Hydrator *self)
{
    Py_CLEAR(self->cls);
    Py_CLEAR(self->state_type);
    Py_CLEAR(self->collected);
    Py_CLEAR(self->names);
    Py_CLEAR(self->state_args);
    return 0;
}

static void
Hydrator_dealloc(Hydrator *self)
{
    PyObject_GC_UnTrack(self);
    Hydrator_clear(self);
    PyMem_Free(self->positions);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Hydrator_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"cls", "state_type", "collected", "names", "positions",
                               "key_position", NULL};
    PyTypeObject *cls;
    PyTypeObject *state_type;
    PyObject *collected, *names = empty_tuple, *positions = Py_None;
    Py_ssize_t key_position = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!O|O!On:Hydrator", keywords,
                                     &PyType_Type, &cls, &PyType_Type, &state_type,
                                     &collected, &PyTuple_Type, &names, &positions,
                                     &key_position)) {
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(names);
    int loads = positions != Py_None; /* without positions: attach_state and expire only */
    if (loads && (!PyTuple_Check(positions) || PyTuple_GET_SIZE(positions) != count)) {
        PyErr_SetString(PyExc_ValueError, "positions must be a tuple, one per name");
        return NULL;
    }
    if (loads && key_position < 0) {
        PyErr_SetString(PyExc_ValueError, "row positions must not be negative");
        return NULL;
    }
    if (state_base == NULL || !PyType_IsSubtype(state_type, state_base)) {
        PyErr_SetString(PyExc_TypeError,
                        "state_type must subclass the registered state class (weakref.ref)");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(names, i))) {
            PyErr_SetString(PyExc_TypeError, "names must be str");
            return NULL;
        }
    }
    Hydrator *self = (Hydrator *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->cls = (PyTypeObject *)Py_NewRef(cls);
    self->state_type = Py_NewRef(state_type);
    self->collected = Py_NewRef(collected);
    self->names = Py_NewRef(names);
    self->count = count;
    self->key_position = key_position;
    if (loads) {
        self->positions = PyMem_New(Py_ssize_t, count > 0 ? count : 1);
        if (self->positions == NULL) {
            Py_DECREF(self);
            return PyErr_NoMemory();
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            Py_ssize_t position = PyLong_AsSsize_t(PyTuple_GET_ITEM(positions, i));
            if (position < 0) {
                if (!PyErr_Occurred()) {
                    PyErr_SetString(PyExc_ValueError, "row positions must not be negative");
                }
                Py_DECREF(self);
                return NULL;
            }
            self->positions[i] = position;
        }
    }
    if (slot_offset(cls, "_asyncorm_state", &self->object_state) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* row[position] as a new reference; tuples (SQLite) and records (asyncpg) both index. */
static inline PyObject *
item(PyObject *row, Py_ssize_t position)
{
    if (PyTuple_CheckExact(row)) {
        if (position >= PyTuple_GET_SIZE(row)) {
            PyErr_SetString(PyExc_IndexError, "row is shorter than its layout");
            return NULL;
        }
        return Py_NewRef(PyTuple_GET_ITEM(row, position));
    }
    return PySequence_GetItem(row, position);
}

/* The object a state refers to (a new reference), or NULL once it is gone. */
static inline PyObject *
referent_of(PyObject *state)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *obj;
    if (PyWeakref_GetRef(state, &obj) < 0) {
        PyErr_Clear(); /* cannot happen: state is a weak reference */
        return NULL;
    }
    return obj;
#else
    PyObject *obj = PyWeakref_GetObject(state);
    return obj == Py_None ? NULL : Py_NewRef(obj);
#endif
}

static inline void
set_slot(PyObject *owner, Py_ssize_t offset, PyObject *value)
{
    Py_XSETREF(SLOT(owner, offset), Py_NewRef(value));
}

/* An object already in the identity map: fill what it lacks, keep what it has. */
static int
refill(Hydrator *self, PyObject *obj, PyObject *state, PyObject *row)
{
    PyObject *values = PyObject_GenericGetDict(obj, NULL);
    if (values == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < self->count; i++) {
        PyObject *name = PyTuple_GET_ITEM(self->names, i);
        int present = PyDict_Contains(values, name);
        if (present < 0) {
            goto error;
        }
        if (!present) {
            PyObject *value = item(row, self->positions[i]);
            if (value == NULL) {
                goto error;
            }
            int failed = PyDict_SetItem(values, name, value);
            Py_DECREF(value);
            if (failed) {
                goto error;
            }
        }
    }
    Py_DECREF(values);
    set_slot(state, state_expired, Py_None);
    return 0;
error:
    Py_DECREF(values);
    return -1;
}

/* ``state_type(obj, collected)``, the weak reference that is the object's state.

   weakref's __new__ does all the work (its __init__ only checks the arguments again, and
   InstanceState defines neither), so __new__ is called directly, with an argument tuple
   reused from row to row while nothing else holds it: a type call and a tuple per row
   were a fifth of the loop's time. */
static PyObject *
new_state(Hydrator *self, PyObject *obj)
{
    PyObject *args = self->state_args;
    if (args == NULL || Py_REFCNT(args) != 1) {
        Py_XDECREF(args);
        args = self->state_args = PyTuple_New(2);
        if (args == NULL) {
            return NULL;
        }
        PyTuple_SET_ITEM(args, 0, Py_NewRef(Py_None));
        PyTuple_SET_ITEM(args, 1, Py_NewRef(self->collected));
    }
    PyTypeObject *type = (PyTypeObject *)self->state_type;
    Py_INCREF(args); /* a nested call (from a finalizer the allocation ran) makes its own */
    Py_SETREF(((PyTupleObject *)args)->ob_item[0], Py_NewRef(obj));
    PyObject *state = type->tp_new(type, args, NULL);
    /* the tuple must not keep the object alive */
    Py_SETREF(((PyTupleObject *)args)->ob_item[0], Py_NewRef(Py_None));
    Py_DECREF(args);
    return state;
}

/* A new state for ``obj``, its slots filled, stored in the object's state slot (which owns
   it: the pointer returned is borrowed from there). */
static PyObject *
attach(Hydrator *self, PyObject *obj, PyObject *key, PyObject *session)
{
    PyObject *state = new_state(self, obj);
    if (state == NULL) {
        return NULL;
    }
    set_slot(state, state_key, key);
    set_slot(state, state_session, session);
    set_slot(state, state_committed, Py_None);
    set_slot(state, state_expired, Py_None);
    set_slot(state, state_deleted, Py_False);
    Py_XSETREF(SLOT(obj, self->object_state), state);
    return state;
}

PyDoc_STRVAR(attach_state_doc,
"attach_state(obj)\n--\n\n"
"Give a new object of the class its state (no key, no session) and return it; the\n"
"generated __init__ starts with this.");

static PyObject *
Hydrator_attach_state(Hydrator *self, PyObject *obj)
{
    if (check_hydrator(self) < 0) {
        return NULL;
    }
    if (!PyObject_TypeCheck(obj, self->cls)) {
        PyErr_Format(PyExc_TypeError, "attach_state() takes a %s, not %s",
                     self->cls->tp_name, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return Py_XNewRef(attach(self, obj, Py_None, Py_None));
}

/* A new object for a row not yet in the identity map; returns a new reference. */
static PyObject *
create(Hydrator *self, PyObject *row, PyObject *key, PyObject *states, PyObject *session)
{
    PyObject *obj = PyBaseObject_Type.tp_new(self->cls, empty_tuple, NULL);
    if (obj == NULL) {
        return NULL;
    }
    PyObject *values = PyObject_GenericGetDict(obj, NULL);
    if (values == NULL) {
        Py_DECREF(obj);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->count; i++) {
        PyObject *value = item(row, self->positions[i]);
        if (value == NULL || PyDict_SetItem(values, PyTuple_GET_ITEM(self->names, i), value)) {
            Py_XDECREF(value);
            goto error;
        }
        Py_DECREF(value);
    }
    PyObject *state = attach(self, obj, key, session);
    if (state == NULL || PyDict_SetItem(states, key, state)) {
        goto error;
    }
    Py_DECREF(values);
    return obj;
error:
    Py_DECREF(values);
    Py_DECREF(obj);
    return NULL;
}

PyDoc_STRVAR(load_in_place_doc,
"load_in_place(rows, states, session)\n--\n\n"
"Replace each row of the list ``rows`` with its object (None for a row without a key),\n"
"through the identity map's dictionary ``states`` for this mapper.");

static PyObject *
Hydrator_load_in_place(Hydrator *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "load_in_place(rows, states, session)");
        return NULL;
    }
    PyObject *rows = args[0], *states = args[1], *session = args[2];
    if (check_hydrator(self) < 0) {
        return NULL;
    }
    if (self->positions == NULL) {
        PyErr_SetString(PyExc_TypeError, "this Hydrator was made without row positions");
        return NULL;
    }
    if (!PyList_CheckExact(rows) || !PyDict_CheckExact(states)) {
        PyErr_SetString(PyExc_TypeError, "load_in_place takes a list and a dict");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        /* held: hashing a key or allocating may run Python code */
        PyObject *row = Py_NewRef(PyList_GET_ITEM(rows, i));
        PyObject *obj = NULL;
        PyObject *key = item(row, self->key_position);
        if (key == NULL) {
            goto error;
        }
        if (key != Py_None) {
            PyObject *state = PyDict_GetItemWithError(states, key);
            if (state != NULL) {
                if (check_state(state) < 0) {
                    goto error;
                }
                Py_INCREF(state);
                obj = referent_of(state);
                if (obj != NULL && refill(self, obj, state, row) < 0) {
                    Py_DECREF(state);
                    goto error;
                }
                Py_DECREF(state);
            }
            else if (PyErr_Occurred()) {
                goto error;
            }
            if (obj == NULL && (obj = create(self, row, key, states, session)) == NULL) {
                goto error;
            }
        }
        else {
            obj = Py_NewRef(Py_None);
        }
        Py_DECREF(key);
        Py_DECREF(row);
        PyList_SetItem(rows, i, obj); /* steals obj; frees the row */
        continue;
    error:
        Py_XDECREF(obj);
        Py_XDECREF(key);
        Py_DECREF(row);
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(expire_doc,
"expire(states, held, expired)\n--\n\n"
"Expire the objects of ``states`` (a list; dead and keyless ones are skipped): remove\n"
"every name of the layout from their __dict__, set their ``expired`` to ``expired``,\n"
"and forget their changes, dropping changed objects from ``held``.");

static PyObject *
Hydrator_expire(Hydrator *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_CheckExact(args[0]) || !PyDict_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "expire(states: list, held: dict, expired)");
        return NULL;
    }
    PyObject *states = args[0], *held = args[1], *expired = args[2];
    if (check_hydrator(self) < 0) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(states); i++) {
        if (check_state(PyList_GET_ITEM(states, i)) < 0) {
            return NULL;
        }
        PyObject *state = Py_NewRef(PyList_GET_ITEM(states, i));
        PyObject *obj = referent_of(state);
        PyObject *key = SLOT(state, state_key);
        if (obj == NULL || key == NULL || key == Py_None) {
            Py_XDECREF(obj);
            Py_DECREF(state);
            continue;
        }
        /* Removing values may free objects, and run their callbacks: both references are
           held until this state is done. */
        PyObject *values = PyObject_GenericGetDict(obj, NULL);
        if (values == NULL) {
            goto error;
        }
        for (Py_ssize_t n = 0; n < self->count; n++) {
            PyObject *name = PyTuple_GET_ITEM(self->names, n);
            int present = PyDict_Contains(values, name);
            if (present < 0 || (present && PyDict_DelItem(values, name) < 0)) {
                Py_DECREF(values);
                goto error;
            }
        }
        Py_DECREF(values);
        set_slot(state, state_expired, expired);
        PyObject *committed = SLOT(state, state_committed);
        if (committed != NULL && committed != Py_None) {
            set_slot(state, state_committed, Py_None);
            if (PyDict_DelItem(held, state) < 0) {
                if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                    goto error;
                }
                PyErr_Clear();
            }
        }
        Py_DECREF(obj);
        Py_DECREF(state);
        continue;
    error:
        Py_DECREF(obj);
        Py_DECREF(state);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Hydrator_methods[] = {
    {"expire", (PyCFunction)(void (*)(void))Hydrator_expire, METH_FASTCALL, expire_doc},
    {"load_in_place", (PyCFunction)(void (*)(void))Hydrator_load_in_place, METH_FASTCALL,
     load_in_place_doc},
    {"attach_state", (PyCFunction)Hydrator_attach_state, METH_O, attach_state_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject HydratorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncorm._orm._speedups.Hydrator",
    .tp_basicsize = sizeof(Hydrator),
    .tp_dealloc = (destructor)Hydrator_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Hydrator_traverse,
    .tp_clear = (inquiry)Hydrator_clear,
    .tp_doc = "One row layout's hydration loop.",
    .tp_methods = Hydrator_methods,
    .tp_new = Hydrator_new,
};

PyDoc_STRVAR(forget_session_doc,
"forget_session(states)\n--\n\n"
"Set ``session`` to None on every state among the values of the dict ``states``.");

static PyObject *
forget_session(PyObject *module, PyObject *states)
{
    if (!PyDict_CheckExact(states)) {
        PyErr_SetString(PyExc_TypeError, "forget_session takes a dict");
        return NULL;
    }
    Py_ssize_t position = 0;
    PyObject *key, *state;
    while (PyDict_Next(states, &position, &key, &state)) {
        if (check_state(state) < 0) {
            return NULL;
        }
        set_slot(state, state_session, Py_None);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(extend_column_updates_doc,
"extend_column_updates(candidates, start, state_class, key, states, rows)\n--\n\n"
"Flush planning's common run (see ``unitofwork._extend_column_updates``): from\n"
"``candidates[start]`` on, while each is a persistent state of ``state_class`` whose only\n"
"change is ``key``, append it to ``states`` and ``(new value, identity)`` to ``rows``.\n"
"Returns the index of the first candidate left to the general planning.");

static PyObject *
extend_column_updates(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyList_CheckExact(args[0]) || !PyLong_CheckExact(args[1]) ||
        !PyType_Check(args[2]) || !PyUnicode_CheckExact(args[3]) ||
        !PyList_CheckExact(args[4]) || !PyList_CheckExact(args[5])) {
        PyErr_SetString(PyExc_TypeError, "extend_column_updates(list, int, type, str, list, "
                        "list)");
        return NULL;
    }
    PyObject *candidates = args[0], *state_class = args[2], *key = args[3];
    PyObject *states = args[4], *rows = args[5];
    Py_ssize_t index = PyLong_AsSsize_t(args[1]);
    if (index < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "start must not be negative");
        }
        return NULL;
    }
    if (state_base == NULL || !PyType_IsSubtype((PyTypeObject *)state_class, state_base)) {
        PyErr_SetString(PyExc_TypeError, "state_class must be a registered state class");
        return NULL;
    }
    /* The list may change under a user's __eq__ or __hash__ of a key: re-read its size. */
    for (; index < PyList_GET_SIZE(candidates); index++) {
        PyObject *state = PyList_GET_ITEM(candidates, index);
        if (Py_TYPE(state) != (PyTypeObject *)state_class) {
            break;
        }
        PyObject *identity = SLOT(state, state_key);
        PyObject *committed = SLOT(state, state_committed);
        if (identity == NULL || identity == Py_None || committed == NULL ||
            !PyDict_CheckExact(committed) || PyDict_GET_SIZE(committed) != 1) {
            break;
        }
        Py_INCREF(state);
        Py_INCREF(identity);
        int found = PyDict_Contains(committed, key);
        PyObject *obj = found == 1 ? referent_of(state) : NULL;
        PyObject *values = obj == NULL ? NULL : PyObject_GenericGetDict(obj, NULL);
        PyObject *value = values == NULL ? NULL : PyDict_GetItemWithError(values, key);
        PyObject *row = value == NULL ? NULL : PyTuple_Pack(2, value, identity);
        int appended = row != NULL && PyList_Append(states, state) == 0 &&
                       PyList_Append(rows, row) == 0;
        Py_XDECREF(row);
        Py_XDECREF(values);
        Py_XDECREF(obj);
        Py_DECREF(identity);
        Py_DECREF(state);
        if (!appended) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            break;  /* not this case: the general planning takes it */
        }
    }
    return PyLong_FromSsize_t(index);
}

PyDoc_STRVAR(release_changes_doc,
"release_changes(states, held)\n--\n\n"
"After a flush: forget each state's old values and let the session stop holding its\n"
"object (``AsyncSession._clear_changes``).");

static PyObject *
release_changes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyDict_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "release_changes(list, dict)");
        return NULL;
    }
    PyObject *states = args[0], *held = args[1];
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(states); i++) {
        PyObject *state = PyList_GET_ITEM(states, i);
        if (check_state(state) < 0) {
            return NULL;
        }
        Py_INCREF(state);  /* releasing an object runs its finalizers */
        set_slot(state, state_committed, Py_None);
        PyObject *obj = Py_XNewRef(PyDict_GetItemWithError(held, state));
        int failed = obj == NULL ? PyErr_Occurred() != NULL : PyDict_DelItem(held, state) < 0;
        Py_XDECREF(obj);  /* the object may die here */
        Py_DECREF(state);
        if (failed) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(linked_states_doc,
"linked_states(states, keys)\n--\n\n"
"The states whose objects hold any of ``keys`` (their mapper's relationship names) in\n"
"their ``__dict__``: a relationship loaded or set (``session._with_relationships``). A\n"
"state whose object is gone has none.");

static PyObject *
linked_states(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "linked_states(list, keys)");
        return NULL;
    }
    PyObject *keys = PySequence_Tuple(args[1]);
    if (keys == NULL) {
        return NULL;
    }
    PyObject *states = args[0];
    PyObject *linked = PyList_New(0);
    for (Py_ssize_t i = 0; linked != NULL && i < PyList_GET_SIZE(states); i++) {
        PyObject *state = Py_NewRef(PyList_GET_ITEM(states, i));
        int found = check_state(state);
        PyObject *obj = found < 0 ? NULL : referent_of(state);
        if (obj != NULL) {
            PyObject *values = PyObject_GenericGetDict(obj, NULL);
            found = values == NULL ? -1 : 0;
            for (Py_ssize_t k = 0; found == 0 && k < PyTuple_GET_SIZE(keys); k++) {
                found = PyDict_Contains(values, PyTuple_GET_ITEM(keys, k));
            }
            Py_XDECREF(values);
            Py_DECREF(obj);
        }
        if (found > 0) {
            found = PyList_Append(linked, state);
        }
        Py_DECREF(state);
        if (found < 0) {
            Py_CLEAR(linked);
        }
    }
    Py_DECREF(keys);
    return linked;
}

PyDoc_STRVAR(object_collected_doc,
"object_collected(state)\n--\n\n"
"The states' weakref callback: the object is gone, so drop its identity-map entry.");

static PyObject *by_mapper_name, *mapper_name;

static PyObject *
object_collected(PyObject *module, PyObject *state)
{
    if (check_state(state) < 0) {
        return NULL;
    }
    PyObject *session = SLOT(state, state_session);
    PyObject *key = SLOT(state, state_key);
    if (session == NULL || session == Py_None || key == NULL || key == Py_None) {
        Py_RETURN_NONE;
    }
    PyObject *entries = NULL, *mapper = NULL;
    PyObject *by_mapper = identity_map_part(session, identity_map_by_mapper, by_mapper_name);
    if (by_mapper == NULL) {
        goto done;
    }
    /* the state class's own ``mapper``: the type's attribute cache, not a getattr */
    mapper = Py_XNewRef(_PyType_Lookup(Py_TYPE(state), mapper_name));
    if (mapper == NULL &&
        (mapper = PyObject_GetAttr((PyObject *)Py_TYPE(state), mapper_name)) == NULL) {
        goto done;
    }
    entries = PyDict_GetItemWithError(by_mapper, mapper);
    if (entries == NULL) {
        goto done;
    }
    Py_INCREF(entries);
    Py_INCREF(key); /* the deletion may drop the last other reference to the state */
    PyObject *current = PyDict_GetItemWithError(entries, key);
    if (current == state) {
        PyDict_DelItem(entries, key);
    }
    Py_DECREF(key);
    Py_DECREF(entries);
done:
    Py_XDECREF(mapper);
    Py_XDECREF(by_mapper);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ColumnAccess: the instance side of a mapped column attribute (``user.name``), the base of
   InstrumentedAttribute. A read is one __dict__ lookup. A write to a loaded attribute of a
   persistent object records its old value, as InstrumentedAttribute._set and
   record_change do; every other case (no state yet, an attribute never loaded, an old value
   that is NO_VALUE) calls that Python method. */

typedef struct {
    PyObject_HEAD
    PyObject *key;             /* the attribute's name */
    PyObject *owner;           /* the mapped class */
    Py_ssize_t object_state;   /* offset of the owner's state slot; -1 until known */
} ColumnAccess;

static PyObject *unloaded_name, *set_name, *held_name;

static int
ColumnAccess_traverse(ColumnAccess *self, visitproc visit, void *arg)
{
    Py_VISIT(self->key);
    Py_VISIT(self->owner);
    return 0;
}

static int
ColumnAccess_clear(ColumnAccess *self)
{
    Py_CLEAR(self->key);
    Py_CLEAR(self->owner);
    return 0;
}

static void
ColumnAccess_dealloc(ColumnAccess *self)
{
    PyObject_GC_UnTrack(self);
    ColumnAccess_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
ColumnAccess_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    ColumnAccess *self = (ColumnAccess *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->object_state = -1;
    }
    return (PyObject *)self;
}

static int
ready(ColumnAccess *self)
{
    if (self->key == NULL || !PyUnicode_Check(self->key) || self->owner == NULL ||
        !PyType_Check(self->owner)) {
        PyErr_SetString(PyExc_TypeError, "a ColumnAccess needs its key and _owner set");
        return -1;
    }
    return 0;
}

static PyObject *
ColumnAccess_get(PyObject *self_, PyObject *obj, PyObject *type)
{
    ColumnAccess *self = (ColumnAccess *)self_;
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self_);
    }
    if (ready(self) < 0) {
        return NULL;
    }
    PyObject *values = PyObject_GenericGetDict(obj, NULL);
    if (values == NULL) {
        return NULL;
    }
    PyObject *value = PyDict_GetItemWithError(values, self->key);
    Py_XINCREF(value);
    Py_DECREF(values);
    if (value != NULL || PyErr_Occurred()) {
        return value;
    }
    return PyObject_CallMethodOneArg(self_, unloaded_name, obj);
}

/* The state of an instance of the owner class, borrowed; NULL when it has none yet or is
   not such an instance (the Python path decides then). */
static PyObject *
state_of(ColumnAccess *self, PyObject *obj)
{
    if (!PyObject_TypeCheck(obj, (PyTypeObject *)self->owner)) {
        return NULL;
    }
    PyTypeObject *owner = (PyTypeObject *)self->owner;
    if (self->object_state < 0 && slot_offset(owner, "_asyncorm_state", &self->object_state) < 0) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *state = SLOT(obj, self->object_state);
    return state != NULL && is_state(state) ? state : NULL;
}

/* ``_same`` of attributes.py: the same object, or equal and of the same type. == may be
   user code that fails: then the values differ. */
static int
same_value(PyObject *old, PyObject *value)
{
    if (old == value) {
        return 1;
    }
    int equal = PyObject_RichCompareBool(old, value, Py_EQ);
    if (equal < 0) {
        PyErr_Clear();
        return 0;
    }
    return equal && Py_TYPE(old) == Py_TYPE(value);
}

/* The first change of a loaded attribute: keep the old value, and have the session hold
   the object until it is flushed. 0 done, 1 not this case, -1 error. */
static int
first_change(ColumnAccess *self, PyObject *obj, PyObject *state, PyObject *values,
             PyObject *value)
{
    PyObject *committed = SLOT(state, state_committed);
    if (committed != NULL && committed != Py_None) {
        return 1;
    }
    PyObject *old = PyDict_GetItemWithError(values, self->key);
    if (old == NULL) {
        return PyErr_Occurred() ? -1 : 1;
    }
    Py_INCREF(old);
    int same = same_value(old, value);
    int result = 0;
    if (!same) {
        PyObject *changes = PyDict_New();
        if (changes == NULL || PyDict_SetItem(changes, self->key, old) < 0) {
            Py_XDECREF(changes);
            Py_DECREF(old);
            return -1;
        }
        Py_XSETREF(SLOT(state, state_committed), changes);
        PyObject *session = SLOT(state, state_session);
        if (session != NULL && session != Py_None) {
            Py_INCREF(session);
            PyObject *held = identity_map_part(session, identity_map_held, held_name);
            if (held == NULL || PyObject_SetItem(held, state, obj) < 0) {
                result = -1;
            }
            Py_XDECREF(held);
            Py_DECREF(session);
        }
    }
    Py_DECREF(old);
    return result;
}

/* A change of an object that has changes already (``record_change``): keep the first old
   value of the attribute, and forget it when the value is set back. The object is held
   since its first change. 0 done, 1 not this case, -1 error. */
static int
later_change(ColumnAccess *self, PyObject *state, PyObject *values, PyObject *value)
{
    PyObject *committed = SLOT(state, state_committed);
    if (committed == NULL || !PyDict_CheckExact(committed) || no_value == NULL) {
        return 1;
    }
    Py_INCREF(committed); /* == below may be user code */
    int result;
    PyObject *original = PyDict_GetItemWithError(committed, self->key);
    if (original != NULL) {
        Py_INCREF(original);
        if (original == no_value) {
            result = 1;
        }
        else if (same_value(original, value)) {
            result = PyDict_DelItem(committed, self->key) < 0 ? -1 : 0;
            if (result < 0 && PyErr_ExceptionMatches(PyExc_KeyError)) {
                PyErr_Clear(); /* == removed it already */
                result = 0;
            }
        }
        else {
            result = 0;
        }
        Py_DECREF(original);
    }
    else if (PyErr_Occurred()) {
        result = -1;
    }
    else {
        PyObject *old = Py_XNewRef(PyDict_GetItemWithError(values, self->key));
        if (old == NULL) {
            result = PyErr_Occurred() ? -1 : 1; /* never loaded: the Python path */
        }
        else {
            result = same_value(old, value) || PyDict_SetItem(committed, self->key, old) == 0
                         ? 0
                         : -1;
            Py_DECREF(old);
        }
    }
    Py_DECREF(committed);
    return result;
}

static int
ColumnAccess_set(PyObject *self_, PyObject *obj, PyObject *value)
{
    ColumnAccess *self = (ColumnAccess *)self_;
    if (ready(self) < 0) {
        return -1;
    }
    if (value == NULL) {
        value = Py_None; /* del obj.attr sets None, as InstrumentedAttribute.__delete__ */
    }
    PyObject *state = state_of(self, obj);
    if (state == NULL) {
        goto python;
    }
    PyObject *values = PyObject_GenericGetDict(obj, NULL);
    if (values == NULL) {
        return -1;
    }
    PyObject *key = SLOT(state, state_key);
    if (key != NULL && key != Py_None) {
        Py_INCREF(state);
        int outcome = first_change(self, obj, state, values, value);
        if (outcome == 1) {
            outcome = later_change(self, state, values, value);
        }
        Py_DECREF(state);
        if (outcome != 0) {
            Py_DECREF(values);
            if (outcome < 0) {
                return -1;
            }
            goto python;
        }
    }
    int failed = PyDict_SetItem(values, self->key, value);
    Py_DECREF(values);
    return failed;
python:;
    PyObject *done = PyObject_CallMethodObjArgs(self_, set_name, obj, value, NULL);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

static PyMemberDef ColumnAccess_members[] = {
    {"key", T_OBJECT_EX, offsetof(ColumnAccess, key), 0, "the attribute's name"},
    {"_owner", T_OBJECT_EX, offsetof(ColumnAccess, owner), 0, "the mapped class"},
    {NULL},
};

static PyTypeObject ColumnAccessType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asyncorm._orm._speedups.ColumnAccess",
    .tp_basicsize = sizeof(ColumnAccess),
    .tp_dealloc = (destructor)ColumnAccess_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The instance side of a mapped column attribute.",
    .tp_traverse = (traverseproc)ColumnAccess_traverse,
    .tp_clear = (inquiry)ColumnAccess_clear,
    .tp_members = ColumnAccess_members,
    .tp_descr_get = ColumnAccess_get,
    .tp_descr_set = ColumnAccess_set,
    .tp_new = ColumnAccess_new,
};

static PyMethodDef module_methods[] = {
    {"register_state_class", (PyCFunction)(void (*)(void))register_state_class, METH_FASTCALL,
     register_state_class_doc},
    {"register_session_class", (PyCFunction)(void (*)(void))register_session_class,
     METH_FASTCALL, register_session_class_doc},
    {"forget_session", forget_session, METH_O, forget_session_doc},
    {"object_collected", object_collected, METH_O, object_collected_doc},
    {"extend_column_updates", (PyCFunction)(void (*)(void))extend_column_updates,
     METH_FASTCALL, extend_column_updates_doc},
    {"release_changes", (PyCFunction)(void (*)(void))release_changes, METH_FASTCALL,
     release_changes_doc},
    {"linked_states", (PyCFunction)(void (*)(void))linked_states, METH_FASTCALL,
     linked_states_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "asyncorm._orm._speedups",
    .m_doc = "The ORM's per-object loops in C (optional; the Python code does the same).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    empty_tuple = PyTuple_New(0);
    identity_map_name = PyUnicode_InternFromString("_identity_map");
    by_mapper_name = PyUnicode_InternFromString("_by_mapper");
    mapper_name = PyUnicode_InternFromString("mapper");
    unloaded_name = PyUnicode_InternFromString("_unloaded");
    set_name = PyUnicode_InternFromString("_set");
    held_name = PyUnicode_InternFromString("_held");
    if (empty_tuple == NULL || identity_map_name == NULL || by_mapper_name == NULL ||
        mapper_name == NULL || unloaded_name == NULL || set_name == NULL || held_name == NULL ||
        PyType_Ready(&HydratorType) < 0 || PyType_Ready(&ColumnAccessType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Hydrator", (PyObject *)&HydratorType) < 0 ||
        PyModule_AddObjectRef(m, "ColumnAccess", (PyObject *)&ColumnAccessType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
