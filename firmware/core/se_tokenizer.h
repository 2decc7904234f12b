/* SqueezeEdge firmware core: byte-level lowercase WordPiece (models/TOKENIZER.md).
 * Byte-identical with models/tokenizer.py for every byte string. No allocation. */
#ifndef SE_TOKENIZER_H
#define SE_TOKENIZER_H

#include <stdint.h>
#include "se_meta.h"
#include "se_status.h"

#define SE_TOKEN_PAD 0
#define SE_TOKEN_UNK 1
#define SE_TOKEN_CLS 2
#define SE_MAX_WORD_BYTES 100

/* Caller-owned output of se_tokenize: arrays of capacity max_len (meta->max_len). */
typedef struct {
  int32_t *ids;
  int32_t *starts;   /* byte offsets [start, end) of each token in the input */
  int32_t *ends;
  int32_t capacity;  /* entries the arrays hold; at most meta->max_len are used */
  int32_t length;    /* out: tokens written, [CLS] included */
  int32_t truncated; /* out: 1 when pieces were cut after max_len */
} se_tokens_t;

/* Byte class: 0 space/control, 1 punctuation, 2 digit, 3 letter (incl. every byte >= 0x80). */
int se_byte_class(uint8_t b);

/* Id of the vocabulary entry (cont, key[0..n)) — cont 1 for a "##" piece, key its body — or -1.
 * Entries the tokenizer never produces (the home-name placeholders "[area]", ...) are found too. */
int32_t se_vocab_id(const se_meta_t *meta, int cont, const uint8_t *key, int32_t n);

/* Tokenize data[0..len). Writes [CLS] + pieces, cut after min(capacity, meta->max_len). */
se_status_t se_tokenize(const se_meta_t *meta, const uint8_t *data, int32_t len, se_tokens_t *out);

#endif /* SE_TOKENIZER_H */
