/*
 * str.c - URL decoding and log escaping (str.h).
 */
#include "artemis/str.h"

#include <stdio.h>

int str_hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

long str_urldecode(const char *in, size_t n, char *out, size_t out_len, unsigned flags)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		int hi, lo;

		if (c == '+' && (flags & STR_URL_PLUS)) {
			c = ' ';
		} else if (c == '%' && i + 2 < n &&
		           (hi = str_hexval((unsigned char)in[i + 1])) >= 0 &&
		           (lo = str_hexval((unsigned char)in[i + 2])) >= 0 && (hi | lo) != 0) {
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o + 1 >= out_len)
			return -1;
		out[o++] = c;
	}
	if (out_len == 0)
		return -1;
	out[o] = '\0';
	return (long)o;
}

size_t str_escape(const char *in, size_t n, char *out, size_t out_len)
{
	size_t o = 0;

	if (out_len == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		char tmp[5];
		size_t k;

		if (c < 0x20 || c == 0x7f)
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
		else if (c == '\\')
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\\\");
		else
			tmp[0] = (char)c, k = 1;
		if (o + k >= out_len)
			break;
		for (size_t j = 0; j < k; j++)
			out[o++] = tmp[j];
	}
	out[o] = '\0';
	return o;
}
