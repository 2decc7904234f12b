/* SqueezeEdge firmware core: checking a weights blob (se_blob.h). */
#include "se_blob.h"

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Bitwise rather than a 1 KB table: it runs once per blob, and a table would cost RAM in a
 * native MicroPython module (its const data is copied into the heap). */
uint32_t se_crc32(uint32_t crc, const uint8_t *data, uint32_t len) {
  uint32_t i;
  int k;
  crc = ~crc;
  for (i = 0; i < len; ++i) {
    crc ^= data[i];
    for (k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

se_blob_status_t se_blob_open(const uint8_t *blob, uint32_t len, const se_blob_expect_t *want,
                              const uint8_t **payload, se_blob_header_t *found) {
  se_blob_header_t h = {0, 0, 0, 0};
  se_blob_status_t st = SE_BLOB_OK;
  if (payload) *payload = 0;
  if (blob == 0 || want == 0 || len < SE_BLOB_HEADER_BYTES || blob[0] != 'S' || blob[1] != 'E' ||
      blob[2] != 'W' || blob[3] != 'B') {
    st = SE_BLOB_NOT_A_BLOB;
  } else {
    h.version = (uint32_t)blob[4] | ((uint32_t)blob[5] << 8);
    h.model_id = rd32(blob + 8);
    h.payload_bytes = rd32(blob + 12);
    h.crc32 = rd32(blob + 20);
    if (h.version != SE_BLOB_VERSION || ((uint32_t)blob[6] | ((uint32_t)blob[7] << 8)) != SE_BLOB_HEADER_BYTES) {
      st = SE_BLOB_BAD_VERSION;
    } else if (h.model_id != want->model_id || h.payload_bytes != want->payload_bytes || h.crc32 != want->crc32) {
      st = SE_BLOB_OTHER_MODEL;
    } else if (len - SE_BLOB_HEADER_BYTES < h.payload_bytes) {
      st = SE_BLOB_TRUNCATED;
    } else if (((uintptr_t)(blob + SE_BLOB_HEADER_BYTES)) & 3u) {
      st = SE_BLOB_MISALIGNED;
    } else if (se_crc32(0, blob + SE_BLOB_HEADER_BYTES, h.payload_bytes) != h.crc32) {
      st = SE_BLOB_CORRUPT;
    }
  }
  if (found) *found = h;
  if (st == SE_BLOB_OK && payload) *payload = blob + SE_BLOB_HEADER_BYTES;
  return st;
}

const char *se_blob_message(se_blob_status_t status) {
  switch (status) {
    case SE_BLOB_OK: return "ok";
    case SE_BLOB_NOT_A_BLOB: return "not a SqueezeEdge weights blob (no SEWB header)";
    case SE_BLOB_BAD_VERSION: return "weights blob of another format version: rebuild it with this squeezeedge";
    case SE_BLOB_OTHER_MODEL: return "weights blob of another model: use the squeezeedge.bin built with this module";
    case SE_BLOB_TRUNCATED: return "weights blob truncated: copy the whole file again";
    case SE_BLOB_CORRUPT: return "weights blob corrupt (CRC-32 mismatch): copy the file again";
    case SE_BLOB_MISALIGNED: return "weights blob is not 4-byte aligned in memory";
  }
  return "unknown weights blob status";
}
