/*
 * route_pick.c - the routing strategies and the canary whitelist's address
 * matching (MANAGEMENT.md §2): pure functions of their arguments, with no
 * state and no allocation, called on the discovery hot path
 * (route_shm.c) and unit-tested on their own (tests/unit/test_routing.c).
 *
 * A group with weight 0 is never chosen (drained).  Every strategy answers
 * -1, "every instance", when no group has a weight.
 *
 *   weighted-round-robin  the call's counter value modulo the sum of the
 *                         weights, scattered by a stride coprime to the sum,
 *                         walked over the groups in order: any `sum`
 *                         consecutive counter values give each group
 *                         exactly its weight (70/30 over 100 calls is 70
 *                         and 30), interleaved, whichever worker made them.
 *   close-by-visit        the first group in the caller's zone (and region),
 *                         else the first in its region, else the first.
 *   consistent-hash       weighted rendezvous hashing of the caller's IP: each
 *                         group scores w / -ln(u), u a hash of (group key,
 *                         IP) in (0, 1); the highest wins.  An IP always gets
 *                         the same group while the groups stay; over many
 *                         IPs each group gets its weight's share; a group
 *                         added or removed moves only the IPs it takes or
 *                         gives up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include <xxhash.h>

#include "route_int.h"

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

int route_pick_wrr(const struct route_grp_rec *g, uint32_t n, uint64_t count)
{
	uint64_t total = 0;
	for (uint32_t i = 0; i < n; i++)
		total += g[i].weight;
	if (total == 0)
		return -1;
	/* Positions visited with a stride coprime to the total (about 0.618 of
	 * it): a permutation of 0..total-1, so the shares stay exact over any
	 * `total` consecutive calls, and the groups interleave. */
	uint64_t stride = total * 618 / 1000;
	while (stride < 1 || gcd(stride, total) != 1)
		stride++;
	uint64_t pos = (count % total) * stride % total;
	for (uint32_t i = 0; i < n; i++) {
		if (pos < g[i].weight)
			return (int)i;
		pos -= g[i].weight;
	}
	return -1; /* not reached: pos < total */
}

int route_pick_close(const struct route_grp_rec *g, uint32_t n, uint64_t zone_hash,
                     uint64_t region_hash)
{
	int first = -1, in_region = -1;
	for (uint32_t i = 0; i < n; i++) {
		if (g[i].weight == 0)
			continue;
		bool region_ok = region_hash == 0 || g[i].region_hash == region_hash;
		if (zone_hash && g[i].zone_hash == zone_hash && region_ok)
			return (int)i;
		if (in_region < 0 && region_hash && g[i].region_hash == region_hash)
			in_region = (int)i;
		if (first < 0)
			first = (int)i;
	}
	return in_region >= 0 ? in_region : first;
}

int route_pick_hash(const struct route_grp_rec *g, uint32_t n, const char *ip, size_t ip_len)
{
	int best = -1;
	double best_score = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (g[i].weight == 0)
			continue;
		uint64_t h = XXH3_64bits_withSeed(ip, ip_len, g[i].key_hash);
		double u = ((double)(h >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
		double score = (double)g[i].weight / -log(u);
		if (best < 0 || score > best_score) {
			best = (int)i;
			best_score = score;
		}
	}
	return best;
}

uint64_t route_hash_lower(const char *s, size_t len)
{
	char low[256];
	if (!s || len == 0)
		return 0;
	if (len > sizeof(low))
		len = sizeof(low);
	for (size_t i = 0; i < len; i++)
		low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
	uint64_t h = XXH3_64bits(low, len);
	return h ? h : 1;
}

/* ---- Addresses ------------------------------------------------------------------- */

/* The address part of s into buf (NUL-terminated): blanks, [brackets], an
 * IPv6 zone (%eth0) and an IPv4 port (:8080) removed. */
static int address_text(const char *s, size_t len, char *buf, size_t size)
{
	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len && *s == '[') {
		const char *close = memchr(s, ']', len);
		if (!close)
			return -EINVAL;
		len = (size_t)(close - s - 1);
		s++;
	}
	const char *pct = memchr(s, '%', len);
	if (pct)
		len = (size_t)(pct - s);
	const char *colon = memchr(s, ':', len);
	if (colon && memchr(s, '.', len) && !memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
		len = (size_t)(colon - s); /* a.b.c.d:port */
	if (len == 0 || len >= size)
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return 0;
}

int route_ip_parse(const char *s, size_t len, uint8_t addr[16])
{
	char buf[64];
	struct in_addr v4;
	if (!s || address_text(s, len, buf, sizeof(buf)) < 0)
		return -EINVAL;
	if (inet_pton(AF_INET, buf, &v4) == 1) {
		memset(addr, 0, 10);
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &v4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, buf, addr) == 1 ? 0 : -EINVAL;
}

int route_cidr_parse(const char *s, size_t len, struct route_cidr *out)
{
	const char *slash = s ? memchr(s, '/', len) : NULL;
	size_t alen = slash ? (size_t)(slash - s) : len;
	unsigned bits = 128;
	memset(out, 0, sizeof(*out));
	if (!s || alen == 0 || memchr(s, '[', alen) || memchr(s, '%', alen))
		return -EINVAL;
	/* a plain address (no port, no brackets): what route_ip_parse takes */
	const char *colon = memchr(s, ':', alen);
	if (colon && memchr(s, '.', alen) &&
	    !memchr(colon + 1, ':', alen - (size_t)(colon - s) - 1))
		return -EINVAL;
	if (route_ip_parse(s, alen, out->addr) < 0)
		return -EINVAL;
	bool v4 = memchr(s, ':', alen) == NULL;
	if (slash) {
		const char *p = slash + 1;
		size_t n = len - alen - 1;
		if (n == 0 || n > 3)
			return -EINVAL;
		bits = 0;
		for (size_t i = 0; i < n; i++) {
			if (p[i] < '0' || p[i] > '9')
				return -EINVAL;
			bits = bits * 10 + (unsigned)(p[i] - '0');
		}
		if (bits > (v4 ? 32u : 128u))
			return -EINVAL;
		if (v4)
			bits += 96;
	}
	out->bits = (uint8_t)bits;
	return 0;
}

bool route_cidr_match(const struct route_cidr *c, const uint8_t addr[16])
{
	unsigned full = c->bits / 8, rest = c->bits % 8;
	if (memcmp(c->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (c->addr[full] & mask) == (addr[full] & mask);
}
