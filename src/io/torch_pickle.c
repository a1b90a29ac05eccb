/* torch_pickle.c — the restricted unpickler of torch.save's data.pkl (see torch_pickle.h): a
 * small stack machine over the binary opcodes of pickle protocols 2-5 that torch.save emits,
 * with an allow-list of globals that are interpreted, never called. */
#include "io/torch_pickle.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { G_ODICT, G_REBUILD_V2, G_REBUILD, G_REBUILD_PARAM, G_STORAGE, G_FIRST_ARG };

/* The only globals a torch.save state dict needs. */
static const struct {
    const char *module, *name;
    int kind;
    st_dtype dtype;               /* G_STORAGE only */
} GLOBALS[] = {
    {"collections", "OrderedDict", G_ODICT, ST_F32},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2, ST_F32},
    {"torch._utils", "_rebuild_tensor", G_REBUILD, ST_F32},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAM, ST_F32},
    {"torch", "FloatStorage", G_STORAGE, ST_F32},
    {"torch", "HalfStorage", G_STORAGE, ST_F16},
    {"torch", "BFloat16Storage", G_STORAGE, ST_BF16},
    {"torch", "DoubleStorage", G_STORAGE, ST_F64},
    {"torch", "LongStorage", G_STORAGE, ST_I64},
    {"torch", "IntStorage", G_STORAGE, ST_I32},
    {"torch", "ShortStorage", G_STORAGE, ST_I16},
    {"torch", "CharStorage", G_STORAGE, ST_I8},
    {"torch", "ByteStorage", G_STORAGE, ST_U8},
    {"torch", "BoolStorage", G_STORAGE, ST_BOOL},
    /* TorchScript's typed containers: each returns its first argument */
    {"torch.jit._pickle", "build_intlist", G_FIRST_ARG, ST_F32},
    {"torch.jit._pickle", "build_doublelist", G_FIRST_ARG, ST_F32},
    {"torch.jit._pickle", "build_boollist", G_FIRST_ARG, ST_F32},
    {"torch.jit._pickle", "build_tensorlist", G_FIRST_ARG, ST_F32},
    {"torch.jit._pickle", "restore_type_tag", G_FIRST_ARG, ST_F32},
};
#define N_GLOBALS ((int)(sizeof GLOBALS / sizeof GLOBALS[0]))

/* A state dict needs ~15 objects per tensor: this allows ~250k tensors and bounds memory near
 * 400 MB for a hostile pickle however long it is. */
#define PK_MAX_OBJECTS (1 << 22)

typedef struct {
    const unsigned char *buf;
    size_t size, pos, op_at;
    pk_doc *doc;
    pk_obj **stack;
    int sp, scap;
    int *marks;
    int nmarks, mcap;
    pk_obj **memo;
    size_t memo_cap, memo_len;
    pk_obj *none, *yes, *no;      /* shared: immutable values cost one object each */
    pk_resolver resolve;
    void *user;
    const char *label;
    char *err;
    size_t errlen;
} vm;

static int fail(vm *m, const char *fmt, ...) {
    if (!m->err || !m->errlen) return -1;
    int k = snprintf(m->err, m->errlen, "%s: data.pkl byte %zu: ", m->label, m->op_at);
    if (k < 0 || (size_t)k >= m->errlen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err + k, m->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

/* Grows *p (elements of size sz, capacity *cap) to hold need elements; 0 or -1. */
static int grow(void **p, int *cap, int need, size_t sz) {
    if (need <= *cap) return 0;
    int c = *cap ? *cap : 16;
    while (c < need) {
        if (c > INT_MAX / 2) return -1;
        c *= 2;
    }
    void *np = realloc(*p, sz * (size_t)c);
    if (!np) return -1;
    *p = np;
    *cap = c;
    return 0;
}

static pk_obj *new_obj(vm *m, pk_kind kind) {
    pk_doc *d = m->doc;
    if (d->n_all >= PK_MAX_OBJECTS) {
        fail(m, "the pickle builds more than %d objects; a state dict needs far fewer (refusing the file)", PK_MAX_OBJECTS);
        return NULL;
    }
    if (grow((void **)&d->all, &d->cap_all, d->n_all + 1, sizeof *d->all)) { fail(m, "out of memory"); return NULL; }
    pk_obj *o = calloc(1, sizeof *o);
    if (!o) { fail(m, "out of memory"); return NULL; }
    o->kind = kind;
    d->all[d->n_all++] = o;
    return o;
}

static int push(vm *m, pk_obj *o) {
    if (!o) return -1;
    if (grow((void **)&m->stack, &m->scap, m->sp + 1, sizeof *m->stack)) return fail(m, "out of memory");
    m->stack[m->sp++] = o;
    return 0;
}

/* The stack floor: objects below the innermost mark belong to an enclosing frame. */
static int floor_sp(const vm *m) { return m->nmarks ? m->marks[m->nmarks - 1] : 0; }

static pk_obj *pop(vm *m) {
    if (m->sp <= floor_sp(m)) { fail(m, "stack underflow (the pickle is damaged)"); return NULL; }
    return m->stack[--m->sp];
}

static pk_obj *top(vm *m) {
    if (m->sp <= floor_sp(m)) { fail(m, "stack underflow (the pickle is damaged)"); return NULL; }
    return m->stack[m->sp - 1];
}

/* Pops the innermost mark; the items above it are stack[*from .. m->sp). */
static int pop_mark(vm *m, int *from) {
    if (!m->nmarks) return fail(m, "no MARK on the stack (the pickle is damaged)");
    *from = m->marks[--m->nmarks];
    return 0;
}

static int add_item(vm *m, pk_obj *c, pk_obj *v) {
    if (grow((void **)&c->items, &c->cap, c->n + 1, sizeof *c->items)) return fail(m, "out of memory");
    c->items[c->n++] = v;
    return 0;
}

static int need(vm *m, size_t n) {
    if (n > m->size - m->pos) return fail(m, "the pickle ends inside an opcode (truncated)");
    return 0;
}

static uint64_t rd_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* An unsigned little-endian operand of n bytes. */
static int operand(vm *m, int n, uint64_t *v) {
    if (need(m, (size_t)n)) return -1;
    *v = rd_le(m->buf + m->pos, n);
    m->pos += (size_t)n;
    return 0;
}

static int push_int(vm *m, int64_t v) {
    pk_obj *o = new_obj(m, PK_INT);
    if (!o) return -1;
    o->i = v;
    return push(m, o);
}

/* A string (or bytes) of len bytes at the read position. */
static int push_str(vm *m, uint64_t len) {
    if (len > m->size - m->pos) return fail(m, "a string of %llu bytes runs past the end of the pickle",
                                            (unsigned long long)len);
    pk_obj *o = new_obj(m, PK_STR);
    if (!o) return -1;
    o->s = malloc((size_t)len + 1);
    if (!o->s) return fail(m, "out of memory");
    memcpy(o->s, m->buf + m->pos, (size_t)len);
    o->s[len] = 0;
    o->slen = (size_t)len;
    m->pos += (size_t)len;
    return push(m, o);
}

/* A TUPLE or LIST or DICT of the items stack[from .. sp), which are popped. */
static int collect(vm *m, pk_kind kind, int from) {
    pk_obj *o = new_obj(m, kind);
    if (!o) return -1;
    if (kind == PK_DICT && (m->sp - from) % 2) return fail(m, "DICT with an odd number of items");
    for (int i = from; i < m->sp; i++)
        if (add_item(m, o, m->stack[i])) return -1;
    m->sp = from;
    return push(m, o);
}

static int memo_put(vm *m, uint64_t idx) {
    pk_obj *o = top(m);
    if (!o) return -1;
    /* picklers number memo entries 0, 1, 2, ... in order: a jump ahead is refused, which also
     * bounds the memo by the number of PUT opcodes */
    if (idx > m->memo_len) return fail(m, "memo index %llu skips ahead of the %zu entries so far", (unsigned long long)idx, m->memo_len);
    if (idx >= m->memo_cap) {
        size_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        pk_obj **nm = realloc(m->memo, sizeof *nm * cap);
        if (!nm) return fail(m, "out of memory");
        memset(nm + m->memo_cap, 0, sizeof *nm * (cap - m->memo_cap));
        m->memo = nm;
        m->memo_cap = cap;
    }
    if (!m->memo[idx]) m->memo_len++;
    m->memo[idx] = o;
    return 0;
}

static int memo_get(vm *m, uint64_t idx) {
    if (idx >= m->memo_cap || !m->memo[idx])
        return fail(m, "memo entry %llu is read before it is written", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

static int push_global(vm *m, const char *module, const char *name) {
    for (int g = 0; g < N_GLOBALS; g++)
        if (!strcmp(module, GLOBALS[g].module) && !strcmp(name, GLOBALS[g].name)) {
            pk_obj *o = new_obj(m, PK_GLOBAL);
            if (!o) return -1;
            o->i = g;
            return push(m, o);
        }
    if (!strcmp(module, "__torch__") || !strncmp(module, "__torch__.", 10)) {
        /* a TorchScript module class: kept as a name for NEWOBJ, never looked up */
        pk_obj *o = new_obj(m, PK_GLOBAL);
        if (!o) return -1;
        o->i = -1;
        size_t lm = strlen(module), ln = strlen(name);
        o->s = malloc(lm + ln + 2);
        if (!o->s) return fail(m, "out of memory");
        memcpy(o->s, module, lm);
        o->s[lm] = '.';
        memcpy(o->s + lm + 1, name, ln + 1);
        o->slen = lm + ln + 1;
        return push(m, o);
    }
    return fail(m, "refusing global '%.100s.%.100s': a torch.save checkpoint only needs OrderedDict, the "
                "tensor-rebuild functions and storage types; this file asks for other Python code and may "
                "be hostile (if you trust it, load it in PyTorch and save the state dict as safetensors)",
                module, name);
}

/* GLOBAL's operand: "module\nname\n". */
static int op_global(vm *m) {
    char part[2][256];
    for (int k = 0; k < 2; k++) {
        const unsigned char *nl = memchr(m->buf + m->pos, '\n', m->size - m->pos);
        if (!nl) return fail(m, "GLOBAL without its newline (truncated)");
        size_t len = (size_t)(nl - (m->buf + m->pos));
        if (len >= sizeof part[k] || memchr(m->buf + m->pos, 0, len))
            return fail(m, "GLOBAL name longer than %zu bytes or holding a NUL", sizeof part[k] - 1);
        memcpy(part[k], m->buf + m->pos, len);
        part[k][len] = 0;
        m->pos += len + 1;
    }
    return push_global(m, part[0], part[1]);
}

static int op_stack_global(vm *m) {
    pk_obj *name = pop(m), *module = name ? pop(m) : NULL;
    if (!module) return -1;
    if (module->kind != PK_STR || name->kind != PK_STR || strlen(module->s) != module->slen || strlen(name->s) != name->slen)
        return fail(m, "STACK_GLOBAL needs two strings");
    return push_global(m, module->s, name->s);
}

static bool is_int(const pk_obj *o) { return o->kind == PK_INT || o->kind == PK_BOOL; }

/* ('storage', torch.XStorage, key, location, numel): a storage held in data/<key>. */
static int op_persid(vm *m) {
    pk_obj *pid = pop(m);
    if (!pid) return -1;
    if (pid->kind != PK_TUPLE || pid->n != 5 || pid->items[0]->kind != PK_STR || strcmp(pid->items[0]->s, "storage") ||
        pid->items[1]->kind != PK_GLOBAL || pid->items[1]->i < 0 || GLOBALS[pid->items[1]->i].kind != G_STORAGE ||
        pid->items[2]->kind != PK_STR || pid->items[3]->kind != PK_STR || !is_int(pid->items[4]))
        return fail(m, "persistent id is not ('storage', torch.<Type>Storage, key, location, numel) as torch.save writes it");
    const pk_obj *key = pid->items[2];
    if (strlen(key->s) != key->slen) return fail(m, "storage key holds a NUL byte");
    st_dtype dt = GLOBALS[pid->items[1]->i].dtype;
    int64_t numel = pid->items[4]->i;
    size_t off = 0, nbytes = 0;
    char inner[512];
    if (m->resolve(m->user, key->s, &off, &nbytes, inner, sizeof inner)) return fail(m, "%s", inner);
    size_t es = st_dtype_size(dt);
    if (numel < 0 || (uint64_t)numel > nbytes / es)
        return fail(m, "storage '%.64s' declares %lld %s elements but its archive entry holds only %zu bytes",
                    key->s, (long long)numel, st_dtype_name(dt), nbytes);
    pk_obj *s = new_obj(m, PK_STORAGE);
    if (!s) return -1;
    s->dtype = dt;
    s->offset = off;
    s->numel = numel;
    return push(m, s);
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, ...): a view, checked to lie inside
 * its storage. */
static int make_tensor(vm *m, const pk_obj *args) {
    if (args->n < 4) return fail(m, "_rebuild_tensor with %d arguments (at least 4 expected)", args->n);
    const pk_obj *st = args->items[0], *off = args->items[1], *sz = args->items[2], *sd = args->items[3];
    if (st->kind != PK_STORAGE || !is_int(off) || sz->kind != PK_TUPLE || sd->kind != PK_TUPLE)
        return fail(m, "_rebuild_tensor arguments are not (storage, offset, size, stride)");
    if (sz->n > ST_MAX_DIMS || sd->n != sz->n)
        return fail(m, "tensor with %d dims and %d strides (at most %d dims)", sz->n, sd->n, ST_MAX_DIMS);
    pk_obj *to = new_obj(m, PK_TENSOR);
    if (!to) return -1;
    pk_tensor *t = to->t = calloc(1, sizeof *t);
    if (!t) return fail(m, "out of memory");
    t->storage = st;
    t->storage_offset = off->i;
    t->ndim = sz->n;
    if (off->i < 0) return fail(m, "negative storage offset %lld", (long long)off->i);
    int64_t numel = 1, extent = 0, expect = 1;
    t->contiguous = true;
    for (int d = t->ndim - 1; d >= 0; d--) {
        const pk_obj *a = sz->items[d], *b = sd->items[d];
        if (!is_int(a) || !is_int(b) || a->i < 0 || b->i < 0)
            return fail(m, "tensor size or stride %d is not a non-negative integer", d);
        t->shape[d] = a->i;
        t->stride[d] = b->i;
        if (a->i && numel > INT64_MAX / a->i) return fail(m, "tensor element count overflows");
        numel *= a->i;
        if (a->i > 1) {
            if (b->i && a->i - 1 > (INT64_MAX - extent) / b->i) return fail(m, "tensor extent overflows");
            extent += (a->i - 1) * b->i;
            if (b->i != expect) t->contiguous = false;
        }
        if (expect && a->i > INT64_MAX / expect) expect = 0;   /* only matters for contiguity */
        else expect *= a->i;
    }
    t->numel = numel;
    if (!numel) t->contiguous = true;     /* no bytes to gather */
    int64_t last = numel ? extent : -1;   /* highest element index relative to the offset */
    if (t->storage_offset > st->numel || last >= st->numel - t->storage_offset)
        return fail(m, "tensor view (offset %lld, %lld elements reached) lies outside its storage of %lld elements",
                    (long long)t->storage_offset, (long long)(last + 1), (long long)st->numel);
    return push(m, to);
}

static int op_reduce(vm *m) {
    pk_obj *args = pop(m), *fn = args ? pop(m) : NULL;
    if (!fn) return -1;
    if (fn->kind != PK_GLOBAL || args->kind != PK_TUPLE) return fail(m, "REDUCE of something other than an allowed global");
    if (fn->i < 0) return fail(m, "REDUCE of the TorchScript class %.200s (TorchScript builds modules with NEWOBJ)", fn->s);
    switch (GLOBALS[fn->i].kind) {
    case G_ODICT:
        if (args->n != 0) return fail(m, "OrderedDict called with arguments (torch.save passes none)");
        return push(m, new_obj(m, PK_DICT));
    case G_REBUILD_V2:
    case G_REBUILD:
        return make_tensor(m, args);
    case G_REBUILD_PARAM:
        if (args->n < 1 || args->items[0]->kind != PK_TENSOR) return fail(m, "_rebuild_parameter without a tensor");
        return push(m, args->items[0]);
    case G_FIRST_ARG:
        if (args->n < 1) return fail(m, "torch.jit._pickle.%s without arguments", GLOBALS[fn->i].name);
        return push(m, args->items[0]);
    default:
        return fail(m, "REDUCE of torch.%s, which torch.save never calls", GLOBALS[fn->i].name);
    }
}

/* NEWOBJ of a TorchScript module class: an object whose attributes BUILD sets. */
static int op_newobj(vm *m) {
    pk_obj *args = pop(m), *cls = args ? pop(m) : NULL;
    if (!cls) return -1;
    if (cls->kind != PK_GLOBAL || cls->i >= 0 || args->kind != PK_TUPLE || args->n != 0)
        return fail(m, "NEWOBJ of something other than a TorchScript module class");
    pk_obj *o = new_obj(m, PK_OBJECT);
    if (!o) return -1;
    o->cls = cls;
    return push(m, o);
}

/* BUILD: a TorchScript module's attributes, or an OrderedDict's _metadata (ignored). */
static int op_build(vm *m) {
    pk_obj *state = pop(m), *target = state ? top(m) : NULL;
    if (!target) return -1;
    if (target->kind == PK_DICT) return 0;
    if (target->kind == PK_OBJECT && !target->attrs && state->kind == PK_DICT) {
        target->attrs = state;
        return 0;
    }
    return fail(m, "BUILD on something other than an OrderedDict or a new TorchScript module (torch.save "
                "writes it only for a state dict's _metadata and TorchScript modules' attributes)");
}

/* One opcode; 1 after STOP. */
static int step(vm *m) {
    if (m->pos >= m->size) return fail(m, "the pickle ends without STOP (truncated)");
    m->op_at = m->pos;
    unsigned op = m->buf[m->pos++];
    int from = 0;
    uint64_t u = 0;
    pk_obj *a, *b, *c;
    switch (op) {
    case 0x80:                                        /* PROTO */
        if (need(m, 1)) return -1;
        if (m->buf[m->pos] > 5) return fail(m, "pickle protocol %u is newer than 5", m->buf[m->pos]);
        m->pos++;
        return 0;
    case 0x95:                                        /* FRAME: a length hint */
        if (need(m, 8)) return -1;
        m->pos += 8;
        return 0;
    case '(':                                         /* MARK */
        if (grow((void **)&m->marks, &m->mcap, m->nmarks + 1, sizeof *m->marks)) return fail(m, "out of memory");
        m->marks[m->nmarks++] = m->sp;
        return 0;
    case '.':                                         /* STOP */
        m->doc->root = pop(m);
        return m->doc->root ? 1 : -1;
    case '0':                                         /* POP */
        return pop(m) ? 0 : -1;
    case '1':                                         /* POP_MARK */
        if (pop_mark(m, &from)) return -1;
        m->sp = from;
        return 0;
    case '2':                                         /* DUP */
        a = top(m);
        return a ? push(m, a) : -1;
    case 'N':
        if (!m->none) m->none = new_obj(m, PK_NONE);
        return push(m, m->none);
    case 0x88: case 0x89: {                           /* NEWTRUE, NEWFALSE */
        pk_obj **b = op == 0x88 ? &m->yes : &m->no;
        if (!*b && (*b = new_obj(m, PK_BOOL))) (*b)->i = op == 0x88;
        return push(m, *b);
    }
    case 'J':                                         /* BININT: signed 32 */
        return operand(m, 4, &u) ? -1 : push_int(m, (int32_t)(uint32_t)u);
    case 'K':                                         /* BININT1 */
        return operand(m, 1, &u) ? -1 : push_int(m, (int64_t)u);
    case 'M':                                         /* BININT2 */
        return operand(m, 2, &u) ? -1 : push_int(m, (int64_t)u);
    case 0x8a: case 0x8b: {                           /* LONG1, LONG4: little-endian two's complement */
        int lb = op == 0x8a ? 1 : 4;
        if (need(m, (size_t)lb)) return -1;
        uint64_t n = rd_le(m->buf + m->pos, lb);
        m->pos += (size_t)lb;
        if (n > 8) return fail(m, "an integer of %llu bytes (at most 8 supported)", (unsigned long long)n);
        if (need(m, (size_t)n)) return -1;
        uint64_t v = rd_le(m->buf + m->pos, (int)n);
        if (n && n < 8 && (m->buf[m->pos + n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);
        m->pos += (size_t)n;
        return push_int(m, (int64_t)v);
    }
    case 'G': {                                       /* BINFLOAT: big-endian double */
        if (need(m, 8)) return -1;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = bits << 8 | m->buf[m->pos + (size_t)i];
        m->pos += 8;
        a = new_obj(m, PK_FLOAT);
        if (!a) return -1;
        memcpy(&a->f, &bits, 8);
        return push(m, a);
    }
    case 'X': case 'B':                               /* BINUNICODE, BINBYTES: u32 length */
        return operand(m, 4, &u) ? -1 : push_str(m, u);
    case 'T':                                         /* BINSTRING: signed 32 length */
        if (operand(m, 4, &u)) return -1;
        return (int32_t)(uint32_t)u < 0 ? fail(m, "negative string length") : push_str(m, u);
    case 'U': case 'C': case 0x8c:                    /* SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE */
        return operand(m, 1, &u) ? -1 : push_str(m, u);
    case 0x8d: case 0x8e:                             /* BINUNICODE8, BINBYTES8 */
        return operand(m, 8, &u) ? -1 : push_str(m, u);
    case ')':
        return push(m, new_obj(m, PK_TUPLE));
    case ']':
        return push(m, new_obj(m, PK_LIST));
    case '}':
        return push(m, new_obj(m, PK_DICT));
    case 't': case 'l': case 'd':                     /* TUPLE, LIST, DICT from the mark */
        if (pop_mark(m, &from)) return -1;
        return collect(m, op == 't' ? PK_TUPLE : op == 'l' ? PK_LIST : PK_DICT, from);
    case 0x85: case 0x86: case 0x87:                  /* TUPLE1..3 */
        from = m->sp - (int)(op - 0x84);
        if (from < floor_sp(m)) return fail(m, "stack underflow (the pickle is damaged)");
        return collect(m, PK_TUPLE, from);
    case 'a':                                         /* APPEND */
        a = pop(m);
        b = a ? top(m) : NULL;
        if (!b) return -1;
        if (b->kind != PK_LIST) return fail(m, "APPEND to something that is not a list");
        return add_item(m, b, a);
    case 'e': case 'u':                               /* APPENDS, SETITEMS */
        if (pop_mark(m, &from)) return -1;
        if (from <= floor_sp(m)) return fail(m, "%s without a container below its mark", op == 'e' ? "APPENDS" : "SETITEMS");
        c = m->stack[from - 1];
        if (c->kind != (op == 'e' ? PK_LIST : PK_DICT))
            return fail(m, "%s on something that is not a %s", op == 'e' ? "APPENDS" : "SETITEMS", op == 'e' ? "list" : "dict");
        if (op == 'u' && (m->sp - from) % 2) return fail(m, "SETITEMS with an odd number of items");
        for (int i = from; i < m->sp; i++)
            if (add_item(m, c, m->stack[i])) return -1;
        m->sp = from;
        return 0;
    case 's':                                         /* SETITEM */
        a = pop(m);
        b = a ? pop(m) : NULL;
        c = b ? top(m) : NULL;
        if (!c) return -1;
        if (c->kind != PK_DICT) return fail(m, "SETITEM on something that is not a dict");
        return add_item(m, c, b) || add_item(m, c, a) ? -1 : 0;
    case 'q': case 'r':                               /* BINPUT, LONG_BINPUT */
        return operand(m, op == 'q' ? 1 : 4, &u) ? -1 : memo_put(m, u);
    case 0x94:                                        /* MEMOIZE */
        return memo_put(m, m->memo_len);
    case 'h': case 'j':                               /* BINGET, LONG_BINGET */
        return operand(m, op == 'h' ? 1 : 4, &u) ? -1 : memo_get(m, u);
    case 'c':
        return op_global(m);
    case 0x93:
        return op_stack_global(m);
    case 'R':
        return op_reduce(m);
    case 'Q':
        return op_persid(m);
    case 'b':
        return op_build(m);
    case 0x81:
        return op_newobj(m);
    default:
        if (op >= 0x20 && op < 0x7f)
            return fail(m, "opcode '%c' (0x%02x) is not one torch.save writes; refusing the file", op, op);
        return fail(m, "opcode 0x%02x is not one torch.save writes; refusing the file", op);
    }
}

int pk_load(const unsigned char *buf, size_t size, pk_resolver resolve, void *user, pk_doc *doc,
            const char *label, char *err, size_t errlen) {
    memset(doc, 0, sizeof *doc);
    vm m = {.buf = buf, .size = size, .doc = doc, .resolve = resolve, .user = user, .label = label,
            .err = err, .errlen = errlen};
    int rc;
    if (size > (size_t)INT_MAX / 4) rc = fail(&m, "data.pkl of %zu bytes is too large", size);
    else
        while ((rc = step(&m)) == 0) {}
    free(m.stack);
    free(m.marks);
    free(m.memo);
    if (rc < 0) {
        doc->root = NULL;
        return -1;
    }
    return 0;
}

void pk_free(pk_doc *doc) {
    if (!doc) return;
    for (int i = 0; i < doc->n_all; i++) {
        free(doc->all[i]->s);
        free(doc->all[i]->items);
        free(doc->all[i]->t);
        free(doc->all[i]);
    }
    free(doc->all);
    memset(doc, 0, sizeof *doc);
}

const pk_obj *pk_dict_get(const pk_obj *dict, const char *key) {
    if (!dict || dict->kind != PK_DICT) return NULL;
    for (int i = 0; i + 1 < dict->n; i += 2) {
        const pk_obj *k = dict->items[i];
        if (k->kind == PK_STR && k->slen == strlen(key) && !memcmp(k->s, key, k->slen)) return dict->items[i + 1];
    }
    return NULL;
}
