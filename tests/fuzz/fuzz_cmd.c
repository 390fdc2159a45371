/*  fuzz_cmd.c — the writer's command decoder, the first reader of every
    intake frame.

    A command it accepts follows every rule (bus_cmd_check), encodes and
    decodes to the same request (fingerprint), and whatever the writer
    could commit of it renders (fuzz_render_cmd).  One it refuses for a
    rule, though it reads (bus_cmd_read), is answered with an ack that the
    gateway can read, its reason text.  */

#include <string.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "fuzz.h"

static bus_cmd_t s_cmd, s_read, s_again;
static bus_ack_t s_ack, s_ack_read;

//  The writer's refusal of a command that reads but breaks a rule
static void
s_refusal (const bus_cmd_t *cmd)
{
    char why[BUS_ERROR_MAX];
    FUZZ_CHECK (bus_cmd_check (cmd, why, sizeof why) == BUS_ERR_INVALID);
    FUZZ_CHECK (bus_valid_text (why));
    if (!bus_valid_key (cmd->key) || !bus_valid_node (cmd->origin))
        return;   //  dropped: no ack can name it
    memset (&s_ack, 0, sizeof s_ack);
    memcpy (s_ack.key, cmd->key, sizeof s_ack.key);
    s_ack.fingerprint = bus_cmd_fingerprint (cmd);
    s_ack.status = BUS_ERR_INVALID;
    snprintf (s_ack.error, sizeof s_ack.error, "%s", why);
    zframe_t *frame = bus_ack_encode (&s_ack);
    FUZZ_CHECK (frame);
    FUZZ_CHECK (
        bus_ack_decode (zframe_data (frame), zframe_size (frame), &s_ack_read)
        == 0);
    FUZZ_CHECK (s_ack_read.fingerprint == s_ack.fingerprint);
    zframe_destroy (&frame);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    int rc = bus_cmd_decode (data, size, &s_cmd);
    int read = bus_cmd_read (data, size, &s_read);
    //  Decoding is reading, then the rules
    FUZZ_CHECK ((rc == 0)
                == (read == 0 && bus_cmd_check (&s_read, NULL, 0) == 0));
    if (rc != 0) {
        if (read == 0)
            s_refusal (&s_read);
        return 0;
    }
    FUZZ_CHECK (bus_cmd_fingerprint (&s_cmd) == bus_cmd_fingerprint (&s_read));
    zframe_t *frame = bus_cmd_encode (&s_cmd);
    FUZZ_CHECK (frame);
    FUZZ_CHECK (
        bus_cmd_decode (zframe_data (frame), zframe_size (frame), &s_again)
        == 0);
    FUZZ_CHECK (bus_cmd_fingerprint (&s_again) == bus_cmd_fingerprint (&s_cmd));
    zframe_destroy (&frame);
    fuzz_render_cmd (&s_cmd);
    return 0;
}
