// AES-128-CTR keystream from OpenSSL's libcrypto (EVP, with AES-NI/VAES where the CPU has
// them), written straight into the caller's buffer: no allocation, no copy.
#ifndef CKEYSTREAM_H
#define CKEYSTREAM_H

#include <stddef.h>
#include <stdint.h>

/// Writes `length` bytes of the AES-128-CTR keystream under `key`, starting at counter block
/// `iv` (a 128-bit big-endian counter, incremented across all 128 bits), into `out`.
/// Returns 0, or -1 when libcrypto refused (out of memory).
int lethe_aes128_ctr_keystream(const uint8_t key[16], const uint8_t iv[16], uint8_t *out, size_t length);

#endif
