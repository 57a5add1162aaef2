/*
 * seal.c - every frame after the handshake, authenticated (and by default
 * encrypted) with the connection's session keys (auth.c).
 *
 * ChaCha20-Poly1305 (IETF, libsodium) per direction, the nonce being the
 * frame's sequence number in that direction (0, 1, 2, ... implicit: it is
 * never sent).  The 4-byte length header is authenticated data, so is the
 * payload itself when [cluster] encrypt = off (then the payload travels in
 * clear, followed by the tag); with encryption the payload is the
 * ciphertext.  A frame that was forged (no key), altered (one bit is
 * enough), replayed, dropped before or moved (its sequence number is not
 * the one expected next) fails the tag check: repl_open refuses it and the
 * caller closes the connection.  The same guarantees as crypto_secretstream,
 * without its per-message header (the nonce is implicit) and with the clear
 * mode the stream needs when encryption is off.
 *
 * Keys are fresh per connection (derived from both HELLOs' nonces), so a
 * sequence number never repeats under one key.
 */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "proto.h"

_Static_assert(REPL_TAG_BYTES == crypto_aead_chacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(REPL_KEY_BYTES == crypto_aead_chacha20poly1305_ietf_KEYBYTES, "key size");

static void seal__nonce(uint64_t seq, uint8_t npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES])
{
	memset(npub, 0, crypto_aead_chacha20poly1305_ietf_NPUBBYTES);
	for (int i = 0; i < 8; i++)
		npub[4 + i] = (uint8_t)(seq >> (8 * i));
}

static void seal__hdr(uint8_t *h, size_t n)
{
	h[0] = (uint8_t)(n >> 24);
	h[1] = (uint8_t)(n >> 16);
	h[2] = (uint8_t)(n >> 8);
	h[3] = (uint8_t)n;
}

void repl_seal(repl_seal_t *s, const uint8_t *frame, size_t payload_len, uint8_t *out)
{
	uint8_t npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	const uint8_t *m = frame + REPL_FRAME_HDR;
	uint8_t *c = out + REPL_FRAME_HDR, *tag = c + payload_len;

	seal__nonce(s->seq++, npub);
	seal__hdr(out, payload_len + REPL_TAG_BYTES);
	if (s->encrypt) {
		crypto_aead_chacha20poly1305_ietf_encrypt_detached(
		    c, tag, NULL, m, payload_len, out, REPL_FRAME_HDR, NULL, npub, s->key);
		return;
	}
	/* Nothing to encrypt (0 bytes at `tag`): the payload is authenticated
	 * data, in clear. */
	memmove(c, m, payload_len);
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(
	    tag, tag, NULL, tag, 0, out, REPL_FRAME_HDR + payload_len, NULL, npub, s->key);
}

int repl_open(repl_seal_t *s, uint8_t *frame, size_t len)
{
	uint8_t npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	uint8_t *c = frame + REPL_FRAME_HDR;
	int rc;

	if (len < REPL_TAG_BYTES)
		return -EBADMSG;
	size_t plen = len - REPL_TAG_BYTES;
	const uint8_t *tag = c + plen;
	seal__nonce(s->seq, npub);
	if (s->encrypt)
		rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(
		    c, NULL, c, plen, tag, frame, REPL_FRAME_HDR, npub, s->key);
	else
		rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(
		    c + plen, NULL, tag, 0, tag, frame, REPL_FRAME_HDR + plen, npub, s->key);
	if (rc != 0)
		return -EBADMSG;
	s->seq++;
	return 0;
}

void repl_seal_wipe(repl_seal_t *s)
{
	sodium_memzero(s, sizeof(*s));
}
