/*
 * rot13.c - a Conveyor plugin module built out of the Conveyor tree: one
 * stage, rot13, that rotates ASCII letters by 13 places.  Use it in a
 * pipeline as  plugin = rot13:rot13  (module name : stage name).
 */
#include <conveyor/plugin.h>

#include <stdlib.h>

static int rot13(conveyor_ctx *ctx, const void *item, size_t len)
{
    /* Items are bytes, not C strings, and are valid only during this call:
     * work on a copy.  (+1 so that an empty item still gets a buffer.) */
    const unsigned char *in = item;
    unsigned char *out = malloc(len + 1);
    size_t i;
    int rc;

    if (!out) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory");
        return -1;              /* non-zero: this item failed */
    }
    for (i = 0; i < len; i++) {
        unsigned char c = in[i];
        if (c >= 'a' && c <= 'z')
            c = (unsigned char)('a' + (c - 'a' + 13) % 26);
        else if (c >= 'A' && c <= 'Z')
            c = (unsigned char)('A' + (c - 'A' + 13) % 26);
        out[i] = c;
    }
    rc = conveyor_emit(ctx, out, len);  /* copies the bytes; pass the result on */
    free(out);
    return rc;
}

/* No parameters: an empty list makes the host refuse any stray key. */
static const conveyor_param_spec rot13_params[] = { { .name = NULL } };

static const conveyor_stage stages[] = {
    { .name = "rot13", .summary = "rotates ASCII letters by 13 places",
      .process = rot13, .params = rot13_params },
    { .name = NULL },
};

/* Exports conveyor_module_v1, stamped with the ABI version of the header. */
CONVEYOR_MODULE("rot13", "1.0", stages);
