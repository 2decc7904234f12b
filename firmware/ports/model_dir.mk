# Every port builds one model package: MODEL_DIR must name it (except for `make clean`).
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),all)),)
ifeq ($(MODEL_DIR),)
$(error MODEL_DIR=<model package directory> is required (model.c, model.h, model_meta.c, model_meta.h))
endif
endif
