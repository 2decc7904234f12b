/* SqueezeEdge for MicroPython: `import squeezeedge`, classify(text) -> dict.
 *
 * One source, two builds (firmware/micropython/README.md):
 *  - a dynamic native module (.mpy, MICROPY_ENABLE_DYNRUNTIME): the model is compiled with its
 *    constants in a weights blob (compiler/blob.py), which load(buffer) checks and binds without
 *    copying, so that weights in a ROMFS file stay in flash (a .mpy's own const data is copied
 *    into the heap at import). squeezeedge_natmod.py, merged into the .mpy, finds the blob at
 *    import;
 *  - a user C module built into a firmware (USER_C_MODULES): the constants are `const` arrays in
 *    flash, nothing to load.
 * The classifier's RAM (arena, token buffers, the home's names table: se_engine_t) is one global:
 * in the .mpy's bss (allocated in the heap once, at import) or in the firmware's .bss. A call
 * allocates nothing but its result. */
#ifdef MICROPY_ENABLE_DYNRUNTIME
#include "py/dynruntime.h"
#else
#include "py/runtime.h"
#include "py/objstr.h"
#endif

#include <string.h>

#include "se_engine.h"
#include "se_json.h"
#include "se_protocol.h"
#include "se_utf8.h"
#ifdef SE_MODEL_BLOB_ID
#include "se_blob.h"
#endif

#define SE_MP_VERSION "0.1.0" /* the firmware version of the C ports (ports/host/main.c) */

/* Not static: a native module's bss variables cannot be (tools/mpy_ld.py). */
se_engine_t se_mp_engine;
int se_mp_ready; /* se_engine_init done */

static void ensure_engine(void) {
  if (!se_mp_ready) {
    if (se_engine_init(&se_mp_engine) != SE_STATUS_OK) mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("squeezeedge: init failed"));
    se_mp_ready = 1;
  }
}

/* Exceptions whose text is built here: the string object is made before raising, so the stack
 * buffer may go. */
static MP_NORETURN void raise_text(const mp_obj_type_t *type, const char *text, size_t len) {
  mp_raise_type_arg(type, mp_obj_new_str(text, len));
}

static void check_weights(void) {
#ifdef SE_MODEL_BLOB_ID
  if (se_model_weights == 0) {
    mp_raise_msg(&mp_type_RuntimeError,
                 MP_ERROR_TEXT("no weights: put squeezeedge.bin in /rom or beside squeezeedge.mpy, or call "
                               "squeezeedge.load(buffer)"));
  }
#endif
}

/* The classify contract's error, in the protocol's words (se_protocol_check_error). */
static MP_NORETURN void raise_input_error(const se_check_result_t *check) {
  char msg[SE_PROTOCOL_ERROR_MAX];
  const char *code = se_protocol_check_error(check, msg, (int32_t)sizeof msg);
  raise_text(strcmp(code, "model") == 0 ? &mp_type_RuntimeError : &mp_type_ValueError, msg, strlen(msg));
}

/* classify() is stricter than the line protocol (which reads control bytes as spaces, as every
 * engine does): a control byte in a Python string is almost always a caller's bug, so it raises.
 * Whitespace (tab, newline, VT, FF, CR) is allowed. */
static void raise_on_control_byte(const uint8_t *text, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < len; ++i) {
    uint8_t b = text[i];
    if ((b < 0x20 && !(b >= 0x09 && b <= 0x0d)) || b == 0x7f) {
      char msg[80], byte[2] = {hex[b >> 4], hex[b & 15]};
      se_jw_t w;
      se_jw_init(&w, msg, (int32_t)sizeof msg);
      se_jw_raw(&w, "command contains a control byte (0x");
      se_jw_rawn(&w, byte, 2);
      se_jw_raw(&w, " at offset ");
      se_jw_int(&w, (int32_t)i);
      se_jw_raw(&w, ")");
      raise_text(&mp_type_ValueError, msg, (size_t)w.len);
    }
  }
}

static mp_obj_t new_cstr(const char *s) {
  return mp_obj_new_str(s, strlen(s));
}

/* classify(text: str | bytes) -> {"intent": str | None, "confidence": float, "slots": {name: value}} */
static mp_obj_t se_mp_classify(mp_obj_t text_in) {
  size_t len;
  const char *text = mp_obj_str_get_data(text_in, &len);
  const se_meta_t *meta = &se_model_meta;
  se_tokens_t tok;
  se_answer_t ans;
  se_check_result_t check;
  se_status_t st;
  mp_obj_t result, slots;
  int32_t k;
  ensure_engine();
  check_weights();
  if (len > SE_MAX_TEXT_BYTES) { /* before the int32 cast below can wrap */
    check.check = SE_CHECK_TOO_LONG;
    check.length = len > 0x7fffffff ? 0x7fffffff : (int32_t)len;
    raise_input_error(&check);
  }
  check = se_check_command((const uint8_t *)text, (int32_t)len);
  if (check.check != SE_CHECK_OK) raise_input_error(&check);
  raise_on_control_byte((const uint8_t *)text, len);
  st = se_classify(&se_mp_engine.clf, (const uint8_t *)text, (int32_t)len, &tok, &ans, &check);
  if (st == SE_STATUS_INPUT) raise_input_error(&check);
  if (st != SE_STATUS_OK) {
    check.check = SE_CHECK_MODEL;
    check.model_rc = (int32_t)st;
    raise_input_error(&check);
  }
  result = mp_obj_new_dict(3);
  mp_obj_dict_store(result, MP_OBJ_NEW_QSTR(MP_QSTR_intent),
                    ans.intent == 0 ? mp_const_none : new_cstr(se_meta_intent(meta, ans.intent)));
  /* conf_q / 10000 by the VM: no float code in the module (rv32imc and xtensa .mpy have none) */
  mp_obj_dict_store(result, MP_OBJ_NEW_QSTR(MP_QSTR_confidence),
                    mp_binary_op(MP_BINARY_OP_TRUE_DIVIDE, mp_obj_new_int(ans.conf_q), mp_obj_new_int(SE_CONF_ONE)));
  slots = mp_obj_new_dict(ans.n_slots);
  for (k = 0; k < ans.n_slots; ++k) {
    mp_obj_dict_store(slots, new_cstr(se_meta_slot(meta, ans.slots[k].slot)),
                      mp_obj_new_str((const char *)ans.slots[k].value, (size_t)ans.slots[k].value_len));
  }
  mp_obj_dict_store(result, MP_OBJ_NEW_QSTR(MP_QSTR_slots), slots);
  return result;
}
static MP_DEFINE_CONST_FUN_OBJ_1(se_mp_classify_obj, se_mp_classify);

/* names_add(kind, text) -> number of names held. kind: area, floor, name or name:<domain>. */
static mp_obj_t se_mp_names_add(mp_obj_t kind_in, mp_obj_t text_in) {
  size_t kind_len, len;
  const char *kind = mp_obj_str_get_data(kind_in, &kind_len);
  const char *text = mp_obj_str_get_data(text_in, &len);
  se_tokens_t scratch;
  se_name_result_t result = SE_NAME_ADDED;
  se_status_t st;
  int32_t bad = 0;
  ensure_engine();
  check_weights(); /* the vocabulary is in the blob */
  if (kind_len > SE_NAMES_KIND_MAX) result = SE_NAME_BAD_KIND;
  else if (len > SE_MAX_TEXT_BYTES) result = SE_NAME_UNREADABLE;
  else if (!se_utf8_valid((const uint8_t *)text, (int32_t)len, &bad)) {
    mp_raise_ValueError(MP_ERROR_TEXT("name is not valid UTF-8"));
  } else {
    scratch = se_classifier_scratch_tokens(&se_mp_engine.clf);
    st = se_names_add(&se_mp_engine.names, &se_model_meta, (const uint8_t *)kind, (int32_t)kind_len,
                      (const uint8_t *)text, (int32_t)len, &scratch, &result);
    if (st == SE_STATUS_OK) return mp_obj_new_int(se_mp_engine.names.n);
    if (st != SE_STATUS_INPUT) mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("adding the name failed"));
  }
  if (result == SE_NAME_FULL) {
    char msg[128];
    se_jw_t w;
    se_jw_init(&w, msg, (int32_t)sizeof msg);
    se_jw_raw(&w, "the names table is full (");
    se_jw_int(&w, se_mp_engine.names.cap);
    se_jw_raw(&w, " names, ");
    se_jw_int(&w, se_mp_engine.names.ids_cap);
    se_jw_raw(&w, " tokens): call names_clear() first, then add fewer or shorter names");
    raise_text(&mp_type_RuntimeError, msg, (size_t)w.len);
  } else {
    const char *code;
    const char *msg = se_protocol_name_error(result, &code);
    raise_text(strcmp(code, "internal") == 0 ? &mp_type_RuntimeError : &mp_type_ValueError, msg, strlen(msg));
  }
  return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(se_mp_names_add_obj, se_mp_names_add);

static mp_obj_t se_mp_names_clear(void) {
  ensure_engine();
  se_names_clear(&se_mp_engine.names);
  return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(se_mp_names_clear_obj, se_mp_names_clear);

/* names() -> number of names held */
static mp_obj_t se_mp_names(void) {
  ensure_engine();
  return mp_obj_new_int(se_mp_engine.names.n);
}
static MP_DEFINE_CONST_FUN_OBJ_0(se_mp_names_obj, se_mp_names);

static void store_int(mp_obj_t d, const char *key, mp_int_t v) {
  mp_obj_dict_store(d, new_cstr(key), mp_obj_new_int(v));
}

/* info() -> the model and the module's memory, as the protocol's /info reports them */
static mp_obj_t se_mp_info(void) {
  mp_obj_t d = mp_obj_new_dict(16);
  ensure_engine();
  mp_obj_dict_store(d, new_cstr("version"), new_cstr(SE_MP_VERSION));
  store_int(d, "vocab_size", SE_META_VOCAB_SIZE);
  store_int(d, "max_len", SE_META_MAX_LEN);
  store_int(d, "intents", SE_META_N_INTENTS - 1);
  store_int(d, "slots", SE_META_N_SLOTS);
  store_int(d, "arena_bytes", SE_MODEL_ARENA_BYTES);
  store_int(d, "ram_bytes", (mp_int_t)sizeof se_mp_engine);
  store_int(d, "weight_bytes", SE_MODEL_WEIGHT_BYTES);
  store_int(d, "names", se_mp_engine.names.n);
  store_int(d, "name_tokens", se_mp_engine.names.n_ids);
  store_int(d, "names_max", SE_NAMES_MAX);
  store_int(d, "names_tokens_max", SE_NAMES_IDS_MAX);
#ifdef SE_MODEL_BLOB_ID
  mp_obj_dict_store(d, new_cstr("weights"), new_cstr(se_model_weights ? "blob" : "none"));
  mp_obj_dict_store(d, new_cstr("model_id"), mp_obj_new_int_from_uint(SE_MODEL_BLOB_ID));
  mp_obj_dict_store(d, new_cstr("weights_address"), mp_obj_new_int_from_uint((uintptr_t)se_model_weights));
  if (se_model_weights == 0) return d; /* the thresholds are in the blob */
#else
  mp_obj_dict_store(d, new_cstr("weights"), new_cstr("const"));
#endif
  store_int(d, "oos_threshold", se_model_meta.oos_threshold);
  store_int(d, "oos_threshold_no_names", se_model_meta.oos_threshold_no_names);
  return d;
}
static MP_DEFINE_CONST_FUN_OBJ_0(se_mp_info_obj, se_mp_info);

/* ---- handle(line): the firmware's own line protocol (firmware/PROTOCOL.md), for a device app such
 * as examples/micropython/main.py: every answer is the C firmware's, byte for byte, by
 * construction. Its buffers (about 5 KB) are made at the first call. ---- */
#define SE_MP_LINE_MAX 1024 /* the boards' line buffer (se_device.h) */

typedef struct {
  se_protocol_t proto;
  uint8_t text[SE_MP_LINE_MAX];
  char out[SE_PROTOCOL_MIN_OUT];
  uint32_t us;          /* a 32-bit microsecond clock built from time.ticks_us() */
  mp_obj_t ticks_last;
  mp_obj_t answer;      /* the answer of the current call (the write callback's) */
} se_mp_protocol_t;

#ifdef MICROPY_ENABLE_DYNRUNTIME
se_mp_protocol_t *se_mp_proto; /* in the heap; module global _protocol keeps it alive */
#else
static se_mp_protocol_t se_mp_proto_ram; /* the firmware's RAM, like the engine */
static se_mp_protocol_t *se_mp_proto;
#endif

static void proto_write(void *ctx, const uint8_t *data, int32_t len) {
  se_mp_protocol_t *m = (se_mp_protocol_t *)ctx;
  if (len > 0 && data[len - 1] == '\n') --len; /* one answer per call: the line, no newline */
  m->answer = mp_obj_new_bytes(data, (size_t)len);
}

/* time.ticks_us() wraps at the port's small-int range; ticks_diff accumulates it into 32 bits */
static uint32_t proto_clock(void *ctx) {
  se_mp_protocol_t *m = (se_mp_protocol_t *)ctx;
  mp_obj_t time = mp_import_name(MP_QSTR_time, mp_const_none, MP_OBJ_NEW_SMALL_INT(0));
  mp_obj_t now = mp_call_function_n_kw(mp_load_attr(time, MP_QSTR_ticks_us), 0, 0, NULL);
  if (m->ticks_last != MP_OBJ_NULL) {
    mp_obj_t args[2] = {now, m->ticks_last};
    m->us += (uint32_t)mp_obj_get_int(mp_call_function_n_kw(mp_load_attr(time, MP_QSTR_ticks_diff), 2, 0, args));
  }
  m->ticks_last = now;
  return m->us;
}

static se_mp_protocol_t *ensure_protocol(void) {
  se_mp_protocol_t *m = se_mp_proto;
  if (m) return m;
#ifdef MICROPY_ENABLE_DYNRUNTIME
  m = (se_mp_protocol_t *)m_malloc(sizeof *m);
  mp_store_global(MP_QSTR__protocol, mp_obj_new_bytearray_by_ref(sizeof *m, m));
#else
  m = &se_mp_proto_ram;
#endif
  memset(m, 0, sizeof *m);
  m->ticks_last = MP_OBJ_NULL;
  m->proto.clf = &se_mp_engine.clf;
  m->proto.names = &se_mp_engine.names;
  m->proto.write = proto_write;
  m->proto.write_ctx = m;
  m->proto.clock = proto_clock;
  m->proto.clock_ctx = m;
  m->proto.device = "micropython";
  m->proto.firmware_version = SE_MP_VERSION;
  m->proto.arena_bytes = SE_MODEL_ARENA_BYTES;
  m->proto.line = m->text; /* handle_line reads the caller's line; feed() is not used here */
  m->proto.line_cap = SE_MP_LINE_MAX;
  m->proto.text_buf = m->text;
  m->proto.out = m->out;
  m->proto.out_cap = SE_PROTOCOL_MIN_OUT;
  if (se_protocol_init(&m->proto) != SE_STATUS_OK) mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("squeezeedge: protocol init failed"));
  se_mp_proto = m;
  return m;
}

/* handle(payload: bytes | str) -> bytes: one request line in (a trailing "\n" or "\r\n" is
 * allowed, as in an MQTT payload: ports/host/mqtt.c), the firmware's JSON answer out (no
 * newline): plain text, {"id", "text"}, /info, {"cmd": "names_add", ...}, ... */
static mp_obj_t se_mp_handle(mp_obj_t line_in) {
  size_t len;
  const char *line = mp_obj_str_get_data(line_in, &len);
  se_mp_protocol_t *m;
  ensure_engine();
  check_weights();
  m = ensure_protocol();
  m->answer = mp_const_none;
  m->proto.stats.bytes_in += (uint64_t)len;
  if (len > 0 && line[len - 1] == '\n') --len;
  if (len > 0 && line[len - 1] == '\r') --len;
  if (len > SE_MP_LINE_MAX) se_protocol_handle_line(&m->proto, (const uint8_t *)line, SE_MP_LINE_MAX, (int32_t)(len > 0x7fffffff ? 0x7fffffff : len), 1);
  else se_protocol_handle_line(&m->proto, (const uint8_t *)line, (int32_t)len, (int32_t)len, 0);
  return m->answer;
}
static MP_DEFINE_CONST_FUN_OBJ_1(se_mp_handle_obj, se_mp_handle);

#ifdef SE_MODEL_BLOB_ID
/* load(buffer): check a weights blob and read the constants from it from now on, in place. The
 * caller keeps the buffer alive (squeezeedge_natmod.py keeps it in the module's globals). */
static mp_obj_t se_mp_load(mp_obj_t buf_in) {
  static const se_blob_expect_t want = {SE_MODEL_BLOB_ID, SE_MODEL_BLOB_PAYLOAD_BYTES, SE_MODEL_BLOB_CRC32};
  mp_buffer_info_t buf;
  const uint8_t *payload = 0;
  se_blob_status_t st;
  mp_get_buffer_raise(buf_in, &buf, MP_BUFFER_READ);
  st = se_blob_open((const uint8_t *)buf.buf, buf.len > 0xffffffffu ? 0xffffffffu : (uint32_t)buf.len, &want,
                    &payload, 0);
  if (st != SE_BLOB_OK) {
    const char *m = se_blob_message(st);
    raise_text(&mp_type_ValueError, m, strlen(m));
  }
  se_model_weights = payload;
  se_model_meta_bind(payload);
  mp_store_global(MP_QSTR__weights, buf_in);
  return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(se_mp_load_obj, se_mp_load);
#endif

#ifdef MICROPY_ENABLE_DYNRUNTIME
mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
  MP_DYNRUNTIME_INIT_ENTRY
  se_mp_ready = 0;
  se_mp_proto = 0;
  se_model_weights = 0;
  ensure_engine();
  mp_store_global(MP_QSTR_classify, MP_OBJ_FROM_PTR(&se_mp_classify_obj));
  mp_store_global(MP_QSTR_names_add, MP_OBJ_FROM_PTR(&se_mp_names_add_obj));
  mp_store_global(MP_QSTR_names_clear, MP_OBJ_FROM_PTR(&se_mp_names_clear_obj));
  mp_store_global(MP_QSTR_names, MP_OBJ_FROM_PTR(&se_mp_names_obj));
  mp_store_global(MP_QSTR_info, MP_OBJ_FROM_PTR(&se_mp_info_obj));
  mp_store_global(MP_QSTR_handle, MP_OBJ_FROM_PTR(&se_mp_handle_obj));
  mp_store_global(MP_QSTR_load, MP_OBJ_FROM_PTR(&se_mp_load_obj));
  MP_DYNRUNTIME_INIT_EXIT
}
#else
/* Called at the first import after every (soft) reset: a fresh, empty names table. */
static mp_obj_t se_mp_init(void) {
  se_mp_ready = 0;
  se_mp_proto = 0;
  ensure_engine();
  return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(se_mp_init_obj, se_mp_init);

static const mp_rom_map_elem_t squeezeedge_globals_table[] = {
  {MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_squeezeedge)},
  {MP_ROM_QSTR(MP_QSTR___init__), MP_ROM_PTR(&se_mp_init_obj)},
  {MP_ROM_QSTR(MP_QSTR_classify), MP_ROM_PTR(&se_mp_classify_obj)},
  {MP_ROM_QSTR(MP_QSTR_names_add), MP_ROM_PTR(&se_mp_names_add_obj)},
  {MP_ROM_QSTR(MP_QSTR_names_clear), MP_ROM_PTR(&se_mp_names_clear_obj)},
  {MP_ROM_QSTR(MP_QSTR_names), MP_ROM_PTR(&se_mp_names_obj)},
  {MP_ROM_QSTR(MP_QSTR_info), MP_ROM_PTR(&se_mp_info_obj)},
  {MP_ROM_QSTR(MP_QSTR_handle), MP_ROM_PTR(&se_mp_handle_obj)},
};
static MP_DEFINE_CONST_DICT(squeezeedge_globals, squeezeedge_globals_table);

const mp_obj_module_t squeezeedge_user_cmodule = {
  .base = {&mp_type_module},
  .globals = (mp_obj_dict_t *)&squeezeedge_globals,
};
MP_REGISTER_MODULE(MP_QSTR_squeezeedge, squeezeedge_user_cmodule);
#endif
