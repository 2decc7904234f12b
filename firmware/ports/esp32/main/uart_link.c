/* SqueezeEdge ESP32 app: UART0 ↔ the engine (see uart_link.h).
 *
 * UART0 is also ESP-IDF's console. Console output normally goes straight into the UART FIFO
 * and could land in the middle of an answer, so once the driver is installed every log line is
 * formatted here and written with one uart_write_bytes call: the driver writes each call whole
 * under its TX lock (uart_tx_all holds tx_mux for the whole call: components/driver/uart/uart.c,
 * esp_driver_uart/src/uart.c from v5.3), and an answer is one call too (se_protocol.c send()). */
#include "uart_link.h"

#include <stdarg.h>
#include <stdio.h>

#include "driver/uart.h"
#include "engine.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

#define SE_UART UART_NUM_0
/* Driver ring buffers (heap, allocated by uart_driver_install). 4 KB of RX hold ~350 ms at
 * 115200 baud while the other transport has the classifier; TX lets answers return at once. */
#define SE_UART_RX_BUF 4096
#define SE_UART_TX_BUF 2048
/* The classify call chain (protocol → classify → decode or model) takes ~1.8 KB of stack on
 * rv32imc (gcc -fstack-usage, README.md "Memory"); Xtensa's register windows need more. */
#define SE_UART_TASK_STACK 6144
#define SE_UART_TASK_PRIO 5
#define SE_LOG_LINE 160 /* longer log lines are cut, keeping their newline */

static const char *TAG = "se_uart";

static void uart_out(void *ctx, const uint8_t *data, int32_t len) {
  (void)ctx;
  /* blocks until the bytes are in the TX ring buffer; v5 takes const void *src */
  uart_write_bytes(SE_UART, (const char *)data, (size_t)len);
}

static int log_to_uart(const char *fmt, va_list ap) {
  char line[SE_LOG_LINE];
  int n = vsnprintf(line, sizeof line, fmt, ap);
  if (n < 0) return n;
  if (n >= (int)sizeof line) {
    n = (int)sizeof line - 1;
    line[n - 1] = '\n'; /* a cut line still ends, so the next answer starts on a line of its own */
  }
  uart_write_bytes(SE_UART, line, (size_t)n);
  return n;
}

static void uart_task(void *arg) {
  static uint8_t buf[256];
  (void)arg;
  for (;;) {
    size_t avail = 0;
    int n;
    /* Wait for the first byte, then take whatever else is already buffered: low latency for a
     * single line, large chunks under load. */
    n = uart_read_bytes(SE_UART, buf, 1, portMAX_DELAY);
    if (n <= 0) continue;
    if (uart_get_buffered_data_len(SE_UART, &avail) == ESP_OK && avail > 0) {
      int more = uart_read_bytes(SE_UART, buf + 1, avail < sizeof buf - 1 ? (uint32_t)avail : (uint32_t)(sizeof buf - 1), 0);
      if (more > 0) n += more;
    }
    engine_feed(buf, n, uart_out, NULL);
  }
}

esp_err_t uart_link_start(uint32_t baud, int logs_on_uart) {
  /* https://docs.espressif.com/projects/esp-idf/en/v5.2/esp32/api-reference/peripherals/uart.html
   * uart_driver_install(port, rx_buffer_size, tx_buffer_size, queue_size, *queue, intr_alloc_flags);
   * UART0's pins are the console's, already set by the ROM: no uart_set_pin. */
  const uart_config_t cfg = {
      .baud_rate = (int)baud,
      .data_bits = UART_DATA_8_BITS,
      .parity = UART_PARITY_DISABLE,
      .stop_bits = UART_STOP_BITS_1,
      .flow_ctrl = UART_HW_FLOWCTRL_DISABLE,
      .source_clk = UART_SCLK_DEFAULT,
  };
  esp_err_t err = uart_driver_install(SE_UART, SE_UART_RX_BUF, SE_UART_TX_BUF, 0, NULL, 0);
  if (err != ESP_OK) {
    ESP_LOGE(TAG, "cannot install the UART0 driver (%s)", esp_err_to_name(err));
    return err;
  }
  err = uart_param_config(SE_UART, &cfg);
  if (err != ESP_OK) {
    ESP_LOGE(TAG, "cannot set UART0 to %u 8N1 (%s)", (unsigned)baud, esp_err_to_name(err));
    return err;
  }
  if (logs_on_uart) esp_log_set_vprintf(log_to_uart);
  else esp_log_level_set("*", ESP_LOG_NONE);
  if (xTaskCreate(uart_task, "se_uart", SE_UART_TASK_STACK, NULL, SE_UART_TASK_PRIO, NULL) != pdPASS) {
    ESP_LOGE(TAG, "cannot start the UART task (out of memory)");
    return ESP_ERR_NO_MEM;
  }
  ESP_LOGI(TAG, "SE_READY uart0 %u 8N1", (unsigned)baud);
  return ESP_OK;
}
