/*
 * aifn's JavaScript engine driver: QuickJS-ng on ABI v1.
 *
 * Built by `cargo xtask js-engine` into js/quickjs-aifn.wasm (committed with
 * its sha256, rebuilt and compared by the test command). The runtime
 * pre-initializes it once per host (`aifn_js_init`, snapshotted), then
 * every call runs in a fresh instance of that snapshot:
 *   aifn_js_compile: the host's script (source) -> module bytecode, output.
 *   aifn_call:       the host's script (bytecode) -> main(input, context).
 * The per-function artifact is that bytecode; the engine is compiled once.
 *
 * Exit codes of both exports (the runtime maps them to outcomes; see
 * crates/runtime/src/js.rs): 0 ok, 1 the script threw (function_error, or a
 * syntax error at compile), 2 the value cannot be output (invalid_output),
 * 3 the engine ran out of memory (memory_limit), 4 the JavaScript stack is
 * exhausted (stack_overflow).
 *
 * Included rather than linked so the driver can re-seed Math.random and
 * wrap the allocator (both internal to quickjs.c).
 */

#define AIFN_ENGINE 1
static int aifn_stack_overflowed;
static int aifn_out_of_memory;
/* The first edit xtask applies to quickjs.c calls this (see js/EDITS). */
#define AIFN_ON_STACK_OVERFLOW() (aifn_stack_overflowed = 1)

#include "quickjs.c"

#define IMPORT(m, n) __attribute__((import_module(m), import_name(n)))
#define EXPORT(n) __attribute__((export_name(n)))

IMPORT("aifn", "input_len") extern int aifn_input_len(void);
IMPORT("aifn", "input_read") extern void aifn_input_read(void *dst);
IMPORT("aifn", "context_len") extern int aifn_context_len(void);
IMPORT("aifn", "context_read") extern void aifn_context_read(void *dst);
IMPORT("aifn", "output_write") extern void aifn_output_write(const void *src, int len);
IMPORT("aifn", "log") extern void aifn_log(int level, const void *src, int len);
/* Only the engine may import these: the function's source or bytecode. */
IMPORT("aifn_js", "script_len") extern int aifn_script_len(void);
IMPORT("aifn_js", "script_read") extern void aifn_script_read(void *dst);

enum { EXIT_OK = 0, EXIT_THREW = 1, EXIT_INVALID_OUTPUT = 2, EXIT_NO_MEMORY = 3, EXIT_STACK = 4 };

/* The shadow stack is 1 MiB (-z stack-size). A plain JavaScript call takes
   far more of the wasm stack than of the shadow stack, so deep recursion
   usually traps on the wasm stack (`stack_bytes`) first; calls with large
   frames (many locals) reach this limit first, a RangeError, well before
   the shadow stack could run out. Both end as stack_overflow. */
#define JS_STACK_BYTES (256 * 1024)

static JSRuntime *rt;
static JSContext *ctx;

/* The allocator: libc's, noting when the wasm memory refuses to grow. */
static void *aifn_js_calloc(void *opaque, size_t count, size_t size)
{
    void *p = js_def_calloc(opaque, count, size);
    if (!p)
        aifn_out_of_memory = 1;
    return p;
}
static void *aifn_js_malloc(void *opaque, size_t size)
{
    void *p = js_def_malloc(opaque, size);
    if (!p && size)
        aifn_out_of_memory = 1;
    return p;
}
static void *aifn_js_realloc(void *opaque, void *ptr, size_t size)
{
    void *p = js_def_realloc(opaque, ptr, size);
    if (!p && size)
        aifn_out_of_memory = 1;
    return p;
}
static const JSMallocFunctions aifn_malloc_funcs = {
    aifn_js_calloc, aifn_js_malloc, js_def_free, aifn_js_realloc, js__malloc_usable_size,
};

static int fail_code(void)
{
    if (aifn_out_of_memory)
        return EXIT_NO_MEMORY;
    if (aifn_stack_overflowed)
        return EXIT_STACK;
    return EXIT_THREW;
}

static void write_cstr(const char *s)
{
    aifn_output_write(s, (int)strlen(s));
}

/* Writes the pending exception's text as the output; returns the code. */
static int report_exception(void)
{
    int code = fail_code();
    JSValue exc = JS_GetException(ctx);
    const char *msg = JS_ToCString(ctx, exc);
    if (msg) {
        write_cstr(msg);
        JS_FreeCString(ctx, msg);
    } else {
        write_cstr("an exception that cannot be shown as text");
    }
    JS_FreeValue(ctx, exc);
    return code;
}

/* console.log/info/warn/error/debug: arguments joined by spaces, strings as
   they are, other values as JSON where they have one. */
static JSValue js_console(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv, int level)
{
    DynBuf b;
    dbuf_init2(&b, c->rt, (DynBufReallocFunc *)js_realloc_rt);
    for (int i = 0; i < argc; i++) {
        if (i)
            dbuf_putc(&b, ' ');
        JSValue shown = JS_UNDEFINED;
        if (JS_IsObject(argv[i]) && !JS_IsFunction(c, argv[i])) {
            shown = JS_JSONStringify(c, argv[i], JS_UNDEFINED, JS_UNDEFINED);
            if (JS_IsException(shown)) {
                JS_FreeValue(c, JS_GetException(c));
                shown = JS_UNDEFINED;
            }
        }
        size_t len;
        const char *s = JS_ToCStringLen(c, &len, JS_IsUndefined(shown) ? argv[i] : shown);
        JS_FreeValue(c, shown);
        if (!s) {
            dbuf_free(&b);
            return JS_EXCEPTION;
        }
        dbuf_put(&b, (const uint8_t *)s, len);
        JS_FreeCString(c, s);
    }
    aifn_log(level, b.buf, (int)b.size);
    dbuf_free(&b);
    return JS_UNDEFINED;
}

static const JSCFunctionListEntry console_funcs[] = {
    JS_CFUNC_MAGIC_DEF("debug", 1, js_console, 1),
    JS_CFUNC_MAGIC_DEF("log", 1, js_console, 2),
    JS_CFUNC_MAGIC_DEF("info", 1, js_console, 2),
    JS_CFUNC_MAGIC_DEF("warn", 1, js_console, 3),
    JS_CFUNC_MAGIC_DEF("error", 1, js_console, 4),
};

/* The call context: the language, with no eval, no host objects and no
   shared memory. */
static JSContext *new_call_context(void)
{
    JSContext *c = JS_NewContextRaw(rt);
    if (!c)
        return NULL;
    if (JS_AddIntrinsicBaseObjects(c) || JS_AddIntrinsicDate(c) || JS_AddIntrinsicRegExp(c) ||
        JS_AddIntrinsicJSON(c) || JS_AddIntrinsicProxy(c) || JS_AddIntrinsicMapSet(c) ||
        JS_AddIntrinsicTypedArrays(c) || JS_AddIntrinsicPromise(c) || JS_AddIntrinsicBigInt(c) ||
        JS_AddIntrinsicWeakRef(c)) {
        JS_FreeContext(c);
        return NULL;
    }
    JSValue global = JS_GetGlobalObject(c);
    JSAtom sab = JS_NewAtom(c, "SharedArrayBuffer");
    JSAtom atomics = JS_NewAtom(c, "Atomics");
    JS_DeleteProperty(c, global, sab, 0);
    JS_DeleteProperty(c, global, atomics, 0);
    JS_FreeAtom(c, sab);
    JS_FreeAtom(c, atomics);
    JSValue console = JS_NewObject(c);
    JS_SetPropertyFunctionList(c, console, console_funcs, countof(console_funcs));
    JS_SetPropertyStr(c, global, "console", console);
    JS_FreeValue(c, global);
    return c;
}

/* Snapshotted by the runtime: the runtime and the call context exist
   before any call. */
EXPORT("aifn_js_init") void aifn_js_init(void)
{
    extern void __wasm_call_ctors(void);
    __wasm_call_ctors();
    rt = JS_NewRuntime2(&aifn_malloc_funcs, NULL);
    if (!rt)
        __builtin_trap();
    JS_SetMaxStackSize(rt, JS_STACK_BYTES);
    JS_SetCanBlock(rt, false);
    ctx = new_call_context();
    if (!ctx)
        __builtin_trap();
}

static uint8_t *read_script(size_t *len)
{
    int n = aifn_script_len();
    uint8_t *buf = malloc((size_t)n + 1);
    if (!buf)
        return NULL;
    aifn_script_read(buf);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

static char *read_json(int (*len_fn)(void), void (*read_fn)(void *), size_t *len)
{
    int n = len_fn();
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        return NULL;
    read_fn(buf);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

/* A compile error as {"message", "line", "column"} for the upload's
   refusal; the place is the first "main.js:LINE:COLUMN" of its stack. */
static int report_compile_error(JSContext *c)
{
    int code = fail_code();
    JSValue exc = JS_GetException(c);
    JSValue out = JS_NewObject(c);
    JS_SetPropertyStr(c, out, "message", JS_ToString(c, exc));
    if (JS_IsObject(exc)) {
        JSValue stack = JS_GetPropertyStr(c, exc, "stack");
        const char *s = JS_IsString(stack) ? JS_ToCString(c, stack) : NULL;
        const char *at = s ? strstr(s, "main.js:") : NULL;
        if (at) {
            char *end;
            long line = strtol(at + 8, &end, 10);
            long column = *end == ':' ? strtol(end + 1, NULL, 10) : 0;
            JS_SetPropertyStr(c, out, "line", JS_NewInt32(c, (int32_t)line));
            JS_SetPropertyStr(c, out, "column", JS_NewInt32(c, (int32_t)column));
        }
        if (s)
            JS_FreeCString(c, s);
        JS_FreeValue(c, stack);
    }
    JSValue json = JS_JSONStringify(c, out, JS_UNDEFINED, JS_UNDEFINED);
    size_t len;
    const char *s = JS_IsException(json) ? NULL : JS_ToCStringLen(c, &len, json);
    if (s) {
        aifn_output_write(s, (int)len);
        JS_FreeCString(c, s);
    }
    JS_FreeValue(c, json);
    JS_FreeValue(c, out);
    JS_FreeValue(c, exc);
    return code;
}

/* Source -> bytecode, in a context of its own that can parse. */
EXPORT("aifn_js_compile") int aifn_js_compile(void)
{
    size_t len;
    uint8_t *src = read_script(&len);
    if (!src)
        return EXIT_NO_MEMORY;
    JSContext *c = JS_NewContextRaw(rt);
    if (!c || JS_AddIntrinsicBaseObjects(c) || JS_AddIntrinsicEval(c))
        return fail_code();
    JS_AddIntrinsicRegExpCompiler(c);
    JSValue mod = JS_Eval(c, (const char *)src, len, "main.js",
                          JS_EVAL_TYPE_MODULE | JS_EVAL_FLAG_COMPILE_ONLY | JS_EVAL_FLAG_STRICT);
    if (JS_IsException(mod))
        return report_compile_error(c);
    size_t size;
    /* No source text or debug tables: a call reads less (errors give their
       message, never a stack). */
    uint8_t *bytecode = JS_WriteObject(c, &size, mod,
                                       JS_WRITE_OBJ_BYTECODE | JS_WRITE_OBJ_STRIP_SOURCE |
                                           JS_WRITE_OBJ_STRIP_DEBUG);
    if (!bytecode)
        return fail_code();
    aifn_output_write(bytecode, (int)size);
    return EXIT_OK;
}

/* Math.random from the call's WASI random stream, which the host seeds
   from the execution id: the snapshot's seed is never reused. */
static void reseed(void)
{
    uint64_t seed = 0;
    if (getentropy(&seed, sizeof(seed)) != 0 || seed == 0)
        seed = 1;
    ctx->random_state = seed;
}

/* Runs queued jobs until `promise` settles or nothing is left to run. */
static int settle(JSValueConst promise)
{
    JSContext *job_ctx;
    while (JS_PromiseState(ctx, promise) == JS_PROMISE_PENDING) {
        int r = JS_ExecutePendingJob(rt, &job_ctx);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
    }
    return 0;
}

/* Unwraps a returned promise: 0 with *value set, or an exit code. */
static int await_value(JSValue *value)
{
    if (!JS_IsPromise(*value))
        return -1;
    if (settle(*value) < 0)
        return report_exception();
    JSPromiseStateEnum state = JS_PromiseState(ctx, *value);
    if (state == JS_PROMISE_PENDING) {
        write_cstr("main's promise never settled");
        return EXIT_THREW;
    }
    JSValue result = JS_PromiseResult(ctx, *value);
    JS_FreeValue(ctx, *value);
    *value = result;
    if (state == JS_PROMISE_REJECTED) {
        JS_Throw(ctx, result);
        *value = JS_UNDEFINED;
        return report_exception();
    }
    return -1;
}

static int invalid_output(const char *why)
{
    write_cstr(why);
    return EXIT_INVALID_OUTPUT;
}

/* The returned value as one JSON document. */
static int write_output(JSValueConst value)
{
    if (JS_IsUndefined(value))
        return invalid_output("main returned undefined");
    if (JS_IsFunction(ctx, value))
        return invalid_output("main returned a function");
    if (JS_IsSymbol(value))
        return invalid_output("main returned a symbol");
    if (JS_IsBigInt(value))
        return invalid_output("main returned a BigInt, which JSON cannot hold");
    JSValue json = JS_JSONStringify(ctx, value, JS_UNDEFINED, JS_UNDEFINED);
    if (JS_IsException(json)) {
        int code = fail_code();
        if (code != EXIT_THREW)
            return report_exception();
        JSValue exc = JS_GetException(ctx);
        const char *msg = JS_ToCString(ctx, exc);
        const char *prefix = "main's value cannot be serialized: ";
        DynBuf b;
        dbuf_init(&b);
        dbuf_put(&b, (const uint8_t *)prefix, strlen(prefix));
        if (msg)
            dbuf_put(&b, (const uint8_t *)msg, strlen(msg));
        aifn_output_write(b.buf, (int)b.size);
        dbuf_free(&b);
        if (msg)
            JS_FreeCString(ctx, msg);
        JS_FreeValue(ctx, exc);
        return EXIT_INVALID_OUTPUT;
    }
    if (JS_IsUndefined(json))
        return invalid_output("main's value has no JSON form");
    size_t len;
    const char *s = JS_ToCStringLen(ctx, &len, json);
    JS_FreeValue(ctx, json);
    if (!s)
        return report_exception();
    aifn_output_write(s, (int)len);
    JS_FreeCString(ctx, s);
    return EXIT_OK;
}

/* The function's module, read from its bytecode and resolved but not
   evaluated. */
static int module_loaded;
static JSValue loaded_module;

static int load_module(void)
{
    size_t code_len;
    uint8_t *code = read_script(&code_len);
    if (!code)
        return EXIT_NO_MEMORY;
    JSValue mod = JS_ReadObject(ctx, code, code_len, JS_READ_OBJ_BYTECODE);
    free(code);
    if (JS_IsException(mod))
        return report_exception();
    if (JS_ResolveModule(ctx, mod) < 0) {
        JS_FreeValue(ctx, mod);
        return report_exception();
    }
    loaded_module = mod;
    module_loaded = 1;
    return EXIT_OK;
}

/* Reading bytecode is most of a small call's work, and the same for every
   call: the host runs this once per function and keeps the memory it
   changed, which each call's fresh instance starts from. Top-level code
   still runs in every call. */
EXPORT("aifn_js_load") int aifn_js_load(void)
{
    return load_module();
}

EXPORT("aifn_call") int aifn_call(void)
{
    size_t input_len, context_len;
    char *input = read_json(aifn_input_len, aifn_input_read, &input_len);
    char *context = read_json(aifn_context_len, aifn_context_read, &context_len);
    if (!input || !context)
        return EXIT_NO_MEMORY;
    reseed();
    if (!module_loaded) {
        int r = load_module();
        if (r != EXIT_OK)
            return r;
    }
    JSValue mod = loaded_module;
    JSModuleDef *m = JS_VALUE_GET_PTR(mod);
    JSValue evaluated = JS_EvalFunction(ctx, mod);
    if (JS_IsException(evaluated))
        return report_exception();
    int r = await_value(&evaluated);
    if (r >= 0)
        return r;
    JS_FreeValue(ctx, evaluated);

    JSValue ns = JS_GetModuleNamespace(ctx, m);
    if (JS_IsException(ns))
        return report_exception();
    JSValue main_fn = JS_GetPropertyStr(ctx, ns, "main");
    if (JS_IsUndefined(main_fn)) {
        main_fn = JS_GetPropertyStr(ctx, ns, "default");
    }
    if (!JS_IsFunction(ctx, main_fn)) {
        write_cstr("the module exports no function main (named or default)");
        return EXIT_THREW;
    }
    JSValue args[2];
    args[0] = JS_ParseJSON(ctx, input, input_len, "input");
    if (JS_IsException(args[0]))
        return report_exception();
    args[1] = JS_ParseJSON(ctx, context, context_len, "context");
    if (JS_IsException(args[1]))
        return report_exception();
    JSValue value = JS_Call(ctx, main_fn, JS_UNDEFINED, 2, (JSValueConst *)args);
    if (JS_IsException(value))
        return report_exception();
    r = await_value(&value);
    if (r >= 0)
        return r;
    return write_output(value);
}
