/* SqueezeEdge firmware core: status codes shared by every module. */
#ifndef SE_STATUS_H
#define SE_STATUS_H

typedef enum {
  SE_STATUS_OK = 0,
  SE_STATUS_NULL = -1,        /* a required pointer is NULL */
  SE_STATUS_BUFFER = -2,      /* a caller-owned buffer is too small */
  SE_STATUS_MODEL = -3,       /* se_model_run failed */
  SE_STATUS_INPUT = -4,       /* the input cannot be processed (see the classify error) */
  SE_STATUS_PARSE = -5        /* a request could not be parsed */
} se_status_t;

#endif /* SE_STATUS_H */
