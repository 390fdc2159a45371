/*  ws_client.c — the WebSocket client handshake (ws_client.h); the frame
    functions are inline in the header.  */

#define _GNU_SOURCE   //  memmem
#include "ws_client.h"
#include <stdio.h>
#include <string.h>

int
ws_client_request (char *buf, size_t cap, const char *host, int port,
                   const char *path, const char *key)
{
    char port_text[16] = "";
    if (port > 0)
        snprintf (port_text, sizeof port_text, ":%d", port);
    int len =
        snprintf (buf, cap,
                  "GET %s HTTP/1.1\r\nHost: %s%s\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  path, host, port_text, key);
    return len <= 0 || (size_t) len >= cap ? -1 : len;
}

int
ws_client_response (const char *data, size_t len, size_t *consumed)
{
    const char *end = memmem (data, len, "\r\n\r\n", 4);
    if (!end)
        return len > 16384 ? -1 : 0;
    if (len < 12 || memcmp (data, "HTTP/1.1 101", 12) != 0)
        return -1;
    *consumed = (size_t) (end - data) + 4;
    return 1;
}
