/* Test tool: the firmware tokenizer alone (no model), optionally followed by the home's names.
 *
 *   se_tokenize [--names FILE]
 *
 * FILE holds "kind<TAB>text" lines; each is added with se_names_add and answered on stdout with
 * "name <se_name_result_t>" before anything else. Then records (4-byte little-endian length +
 * bytes) are read on stdin; for each, "count truncated id:start:end ..." is printed: the tokens
 * after se_tokenize and se_names_apply. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "model_meta.h"
#include "se_names.h"
#include "se_tokenizer.h"

/* Larger than any device's table: the tests compare matching, not capacity. */
#define TOOL_NAMES_MAX 8192
#define TOOL_NAMES_IDS_MAX 65535

static int32_t ids[SE_META_MAX_LEN], starts[SE_META_MAX_LEN], ends[SE_META_MAX_LEN];
static uint8_t data[1 << 20];
static se_name_entry_t name_entries[TOOL_NAMES_MAX];
static uint16_t name_ids[TOOL_NAMES_IDS_MAX];
static se_names_t names;

static int load_names(const char *path, se_tokens_t *scratch) {
  static char line[1 << 16];
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "se_tokenize: cannot read %s\n", path);
    return 0;
  }
  while (fgets(line, (int)sizeof line, f)) {
    size_t n = strlen(line);
    char *tab = strchr(line, '\t');
    se_name_result_t result = SE_NAME_ADDED;
    se_status_t st;
    if (n && line[n - 1] == '\n') line[--n] = 0;
    if (!tab) {
      fprintf(stderr, "se_tokenize: %s: a line without a tab\n", path);
      fclose(f);
      return 0;
    }
    st = se_names_add(&names, &se_model_meta, (const uint8_t *)line, (int32_t)(tab - line), (const uint8_t *)tab + 1,
                      (int32_t)(line + n - tab - 1), scratch, &result);
    if (st != SE_STATUS_OK && st != SE_STATUS_INPUT) {
      fprintf(stderr, "se_tokenize: se_names_add failed with status %d\n", (int)st);
      fclose(f);
      return 0;
    }
    printf("name %d\n", (int)result);
  }
  fclose(f);
  return 1;
}

int main(int argc, char **argv) {
  uint8_t hdr[4];
  se_tokens_t tok;
  int i;
  tok.ids = ids; tok.starts = starts; tok.ends = ends; tok.capacity = SE_META_MAX_LEN;
  se_names_init(&names, name_ids, TOOL_NAMES_IDS_MAX, name_entries, TOOL_NAMES_MAX);
  for (i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--names") == 0 && i + 1 < argc) {
      if (!load_names(argv[++i], &tok)) return 1;
    }
  }
  while (fread(hdr, 1, 4, stdin) == 4) {
    uint32_t n = (uint32_t)hdr[0] | ((uint32_t)hdr[1] << 8) | ((uint32_t)hdr[2] << 16) | ((uint32_t)hdr[3] << 24);
    int32_t k;
    if (n > sizeof data || fread(data, 1, n, stdin) != n) return 1;
    if (se_tokenize(&se_model_meta, data, (int32_t)n, &tok) != SE_STATUS_OK) return 1;
    if (se_names_apply(&names, &se_model_meta, &tok) != SE_STATUS_OK) return 1;
    printf("%d %d", (int)tok.length, (int)tok.truncated);
    for (k = 0; k < tok.length; ++k) printf(" %d:%d:%d", (int)tok.ids[k], (int)tok.starts[k], (int)tok.ends[k]);
    printf("\n");
  }
  return 0;
}
