/*
 * str.h - string helpers every module shares (util/str.c): URL decoding and
 * escaping of untrusted text for logs.
 */
#ifndef ARTEMIS_STR_H
#define ARTEMIS_STR_H

#include <stdbool.h>
#include <stddef.h>

/* Value of a hexadecimal digit, or -1. */
int str_hexval(int ch);

enum { STR_URL_PLUS = 1 << 0 /* '+' decodes to ' ' (query strings) */ };

/* Percent-decode [in, in+n) into out (out may equal in: decoding never
 * lengthens).  "%00" and broken escapes are kept as they are, so the result
 * never holds a NUL.  Returns the decoded length (out is NUL-terminated), or
 * -1 when it does not fit in out_len. */
long str_urldecode(const char *in, size_t n, char *out, size_t out_len, unsigned flags);

/* Copy [in, in+n) to out for a log line: control characters (< 0x20, 0x7f)
 * and backslashes become \xNN / \\, so nothing a client or peer sends can
 * forge a line.  Truncates to out_len (NUL-terminated); returns the length
 * written. */
size_t str_escape(const char *in, size_t n, char *out, size_t out_len);

#endif
