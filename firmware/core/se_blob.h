/* SqueezeEdge firmware core: the weights blob (compiler/blob.py defines the format): a model's
 * constant data in one file, so that it can stay where it is stored (a ROMFS file in flash, a
 * flash partition) while the code runs elsewhere. se_blob_open checks a blob against the one the
 * generated model was compiled with before any inference reads it. No allocation. */
#ifndef SE_BLOB_H
#define SE_BLOB_H

#include <stdint.h>

#define SE_BLOB_MAGIC "SEWB"
#define SE_BLOB_VERSION 1
#define SE_BLOB_HEADER_BYTES 32
#define SE_BLOB_ALIGN 8 /* the payload's constants are aligned to this, relative to the payload */

typedef enum {
  SE_BLOB_OK = 0,
  SE_BLOB_NOT_A_BLOB,   /* shorter than the header, or no "SEWB" magic */
  SE_BLOB_BAD_VERSION,  /* another format version */
  SE_BLOB_OTHER_MODEL,  /* a blob of another model (its id or payload size differs) */
  SE_BLOB_TRUNCATED,    /* fewer bytes than the header announces */
  SE_BLOB_CORRUPT,      /* CRC-32 of the payload does not match */
  SE_BLOB_MISALIGNED    /* the payload is not 4-byte aligned in memory */
} se_blob_status_t;

/* What the generated model expects (model.h: SE_MODEL_BLOB_ID, _PAYLOAD_BYTES, _CRC32). */
typedef struct {
  uint32_t model_id;
  uint32_t payload_bytes;
  uint32_t crc32;
} se_blob_expect_t;

/* What a blob's header says (filled as far as it could be read). */
typedef struct {
  uint32_t version;
  uint32_t model_id;
  uint32_t payload_bytes;
  uint32_t crc32;
} se_blob_header_t;

/* CRC-32 (IEEE 802.3, reflected, as zlib.crc32) of data[0..len), continuing from crc (0 to start). */
uint32_t se_crc32(uint32_t crc, const uint8_t *data, uint32_t len);

/* Check blob[0..len) against `want`; on SE_BLOB_OK *payload points to the constants. `found` may
 * be NULL. Checks in this order: header, version, model, size, alignment, CRC. */
se_blob_status_t se_blob_open(const uint8_t *blob, uint32_t len, const se_blob_expect_t *want,
                              const uint8_t **payload, se_blob_header_t *found);

/* A sentence for a status (English, static). */
const char *se_blob_message(se_blob_status_t status);

#endif /* SE_BLOB_H */
