/*
 * validate_iban: checks an IBAN (ISO 13616) against ABI v1 directly, in C,
 * without libc or any SDK, to show that the ABI is language-neutral.
 *
 *   input  {"iban": "DE89 3704 0044 0532 0130 00"}
 *   output {"valid":true,"country":"DE","iban":"DE89370400440532013000"}
 *          {"valid":false,"country":"DE","reason":"checksum mismatch"}
 *
 * Spaces are ignored and letters may be lowercase. An IBAN is valid when
 * its country is in the IBAN registry, its length is that country's, it has
 * only letters and digits, and its mod-97 check (ISO 7064) gives 1.
 * Input that is not {"iban": "<string>"} makes aifn_call return 1 with a
 * message, which the host reports as function_error.
 *
 * Build: clang --target=wasm32 -O2 -nostdlib -fno-builtin -Wl,--no-entry
 *        -o validate_iban.wasm validate_iban.c   (see crates/xtask)
 */

#define IMPORT(name) __attribute__((import_module("aifn"), import_name(name)))
#define EXPORT(name) __attribute__((export_name(name)))

IMPORT("input_len") int aifn_input_len(void);
IMPORT("input_read") void aifn_input_read(unsigned char *dst);
IMPORT("output_write") void aifn_output_write(const char *src, int len);

typedef unsigned long size_t;

/* First byte after the static data and the stack (defined by wasm-ld). */
extern unsigned char __heap_base;

#define PAGE 65536u
#define MAX_IBAN 34 /* longest IBAN allowed by ISO 13616 */

/* ---- output ----------------------------------------------------------- */

static char out[256];
static size_t out_len;

static void put(const char *s) {
    while (*s && out_len < sizeof out) out[out_len++] = *s++;
}

static void put_n(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n && out_len < sizeof out; i++) out[out_len++] = (char)s[i];
}

static void put_uint(unsigned v) {
    char tmp[10];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n && out_len < sizeof out) out[out_len++] = tmp[--n];
}

static int finish(int code) {
    aifn_output_write(out, (int)out_len);
    return code;
}

/* A function error: the message is the output, the return value 1. */
static int fail(const char *msg) {
    out_len = 0;
    put(msg);
    return finish(1);
}

/* ---- the IBAN registry: country code and length ------------------------ */

static const char REGISTRY[] =
    "AD24AE23AL28AT20AZ28BA20BE16BG22BH22BI27BR29BY28CH21CR22CY28CZ24"
    "DE22DJ27DK18DO28EE20EG29ES24FI18FK18FO18FR27GB22GE22GI23GL18GR27"
    "GT28HR21HU28IE22IL23IQ23IS26IT27JO30KW30KZ20LB28LC32LI21LT20LU20"
    "LV21LY25MC27MD24ME22MK19MN20MR27MT31MU30NI28NL18NO15OM23PK24PL28"
    "PS29PT25QA29RO24RS22RU33SA24SC31SD18SE24SI19SK24SM27SO23ST25SV28"
    "TL23TN24TR26UA29VA22VG24XK20YE30";

static unsigned registry_length(unsigned char a, unsigned char b) {
    for (const char *p = REGISTRY; *p; p += 4) {
        if (p[0] == a && p[1] == b) return (unsigned)((p[2] - '0') * 10 + (p[3] - '0'));
    }
    return 0;
}

/* ---- input ------------------------------------------------------------ */

static const unsigned char *in;
static size_t in_len, pos;

static void skip_ws(void) {
    while (pos < in_len && (in[pos] == ' ' || in[pos] == '\t' || in[pos] == '\n' || in[pos] == '\r')) pos++;
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Scans a JSON string at `pos` (on its opening quote); sets start and len to
 * its raw contents and leaves `pos` after the closing quote. */
static int scan_string(size_t *start, size_t *len) {
    if (pos >= in_len || in[pos] != '"') return 0;
    *start = ++pos;
    while (pos < in_len && in[pos] != '"') pos += (in[pos] == '\\') ? 2 : 1;
    if (pos >= in_len) return 0;
    *len = pos - *start;
    pos++;
    return 1;
}

/* The IBAN, normalized: spaces dropped, letters uppercased. */
static unsigned char iban[MAX_IBAN];
static size_t iban_len;
static int too_long, bad_char;

static void add_char(unsigned c) {
    if (c == ' ') return;
    if (c >= 'a' && c <= 'z') c -= 'a' - 'A';
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) bad_char = 1;
    if (iban_len < MAX_IBAN) iban[iban_len++] = (unsigned char)c;
    else too_long = 1;
}

/* Decodes the raw JSON string contents into `iban`. */
static void decode_iban(size_t start, size_t len) {
    for (size_t i = start; i < start + len; i++) {
        unsigned c = in[i];
        if (c != '\\') { add_char(c); continue; }
        c = in[++i];
        if (c == 'u' && i + 4 < start + len) {
            int v = 0;
            for (int k = 1; k <= 4; k++) {
                int h = hexval(in[i + k]);
                v = (h < 0 || v < 0) ? -1 : v * 16 + h;
            }
            i += 4;
            add_char(v < 0 || v > 127 ? 0x80 : (unsigned)v);
        } else {
            add_char(c == 'n' || c == 't' || c == 'r' || c == 'b' || c == 'f' ? 0x80 : c);
        }
    }
}

/* ISO 7064 mod 97-10 over the rearranged IBAN (first four chars last). */
static unsigned mod97(void) {
    unsigned r = 0;
    for (size_t k = 0; k < iban_len; k++) {
        unsigned char c = iban[(k + 4) % iban_len];
        if (c >= 'A') r = (r * 100 + (c - 'A' + 10)) % 97;
        else r = (r * 10 + (c - '0')) % 97;
    }
    return r;
}

static int verdict(const char *reason, unsigned expected_len) {
    out_len = 0;
    int letters = iban_len >= 2 && iban[0] >= 'A' && iban[0] <= 'Z' && iban[1] >= 'A' && iban[1] <= 'Z';
    put(reason ? "{\"valid\":false" : "{\"valid\":true");
    if (letters) { put(",\"country\":\""); put_n(iban, 2); put("\""); }
    if (reason) {
        put(",\"reason\":\"");
        put(reason);
        if (expected_len) {
            put(": expected "); put_uint(expected_len);
            put(" characters, got "); put_uint((unsigned)iban_len);
        }
        put("\"}");
    } else {
        put(",\"iban\":\""); put_n(iban, iban_len); put("\"}");
    }
    return finish(0);
}

static int check(void) {
    if (too_long) return verdict("longer than 34 characters", 0);
    if (iban_len == 0) return verdict("empty", 0);
    if (bad_char) return verdict("only letters, digits and spaces are allowed", 0);
    if (iban_len < 5) return verdict("too short", 0);
    if (!(iban[0] >= 'A' && iban[1] >= 'A')) return verdict("must start with a two-letter country code", 0);
    if (!(iban[2] <= '9' && iban[3] <= '9')) return verdict("check digits (characters 3 and 4) must be digits", 0);
    unsigned want = registry_length(iban[0], iban[1]);
    if (!want) return verdict("country code not in the IBAN registry", 0);
    if (iban_len != want) return verdict("wrong length for the country", want);
    if (mod97() != 1) return verdict("checksum mismatch", 0);
    return verdict(0, 0);
}

EXPORT("aifn_call") int aifn_call(void) {
    /* Read the input above the heap base, growing memory if needed. */
    in_len = (size_t)aifn_input_len();
    size_t base = (size_t)&__heap_base;
    size_t have = __builtin_wasm_memory_size(0) * PAGE;
    if (base + in_len > have) {
        size_t pages = (base + in_len - have + PAGE - 1) / PAGE;
        if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return fail("input too large for memory");
    }
    aifn_input_read((unsigned char *)base);
    in = (const unsigned char *)base;
    pos = 0;
    iban_len = 0;
    too_long = bad_char = 0;

    const char *shape = "invalid input: expected an object with a string field `iban`";
    int seen = 0;
    skip_ws();
    if (pos >= in_len || in[pos] != '{') return fail(shape);
    pos++;
    skip_ws();
    if (pos < in_len && in[pos] == '}') return fail("invalid input: missing field `iban`");
    for (;;) {
        size_t key, key_len, val, val_len;
        skip_ws();
        if (!scan_string(&key, &key_len)) return fail(shape);
        int is_iban = key_len == 4 && in[key] == 'i' && in[key + 1] == 'b' && in[key + 2] == 'a' && in[key + 3] == 'n';
        if (!is_iban) {
            out_len = 0;
            if (key_len > 64) key_len = 64;
            put("invalid input at ."); put_n(in + key, key_len);
            put(": unknown field `"); put_n(in + key, key_len); put("`, expected `iban`");
            return finish(1);
        }
        if (seen) return fail("invalid input: duplicate field `iban`");
        seen = 1;
        skip_ws();
        if (pos >= in_len || in[pos] != ':') return fail(shape);
        pos++;
        skip_ws();
        if (pos >= in_len || in[pos] != '"') return fail("invalid input at .iban: expected a string");
        if (!scan_string(&val, &val_len)) return fail(shape);
        decode_iban(val, val_len);
        skip_ws();
        if (pos < in_len && in[pos] == ',') { pos++; continue; }
        if (pos < in_len && in[pos] == '}') { pos++; break; }
        return fail(shape);
    }
    skip_ws();
    if (pos != in_len) return fail(shape);
    return check();
}
