/* SqueezeEdge ESP32 app: the line protocol on UART0 (the USB-serial port of most boards). */
#ifndef SE_ESP32_UART_LINK_H
#define SE_ESP32_UART_LINK_H

#include <stdint.h>

#include "esp_err.h"

/* Install the UART0 driver at `baud` 8N1 and start the task that feeds received bytes to the
 * engine. logs_on_uart: 1 routes ESP-IDF log lines through the same driver (whole lines, between
 * answers); 0 silences logging. */
esp_err_t uart_link_start(uint32_t baud, int logs_on_uart);

#endif /* SE_ESP32_UART_LINK_H */
