# The build rules the bare-metal ports share (stm32f4, rv32_virt, xtensa_sim). A port's Makefile
# sets PORT_DIR, CORE_DIR, MODEL_DIR, BUILD_DIR, LDSCRIPT, PREFIX, CFLAGS, LDFLAGS, SRC and HDR,
# and may set LIBS, INCLUDES, EXTRA_OBJ (objects of its own rules), EXTRA_VPATH (more source
# folders) and IMAGES (what `all` makes beside firmware.elf), then includes this file; rules of
# its own come after the include.
include $(dir $(lastword $(MAKEFILE_LIST)))model_dir.mk

.DEFAULT_GOAL := all
CC        := $(PREFIX)gcc
OBJCOPY   := $(PREFIX)objcopy
SIZE      := $(PREFIX)size
INCLUDES  ?= -I$(CORE_DIR) -I$(MODEL_DIR)
OBJ       := $(patsubst %.c,$(BUILD_DIR)/obj/%.o,$(notdir $(SRC))) $(EXTRA_OBJ)

.PHONY: all clean size
vpath %.c $(CORE_DIR) $(PORT_DIR) $(EXTRA_VPATH) $(MODEL_DIR)

all: $(BUILD_DIR)/firmware.elf $(IMAGES) size

$(BUILD_DIR)/obj/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INCLUDES) -c $< -o $@

$(BUILD_DIR)/firmware.elf: $(OBJ) $(LDSCRIPT)
	$(CC) $(LDFLAGS) $(OBJ) $(LIBS) -o $@

$(BUILD_DIR)/firmware.bin: $(BUILD_DIR)/firmware.elf
	$(OBJCOPY) -O binary $< $@

$(BUILD_DIR)/firmware.hex: $(BUILD_DIR)/firmware.elf
	$(OBJCOPY) -O ihex $< $@

size: $(BUILD_DIR)/firmware.elf
	$(SIZE) $<

clean:
	rm -rf $(BUILD_DIR)
