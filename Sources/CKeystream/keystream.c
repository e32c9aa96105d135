#include "CKeystream.h"

#include <openssl/evp.h>

// Encrypting zeros gives the keystream. The zeros are read from one small buffer that stays
// in cache; the output goes straight to the caller's memory.
static const uint8_t zeros[64 * 1024];

int lethe_aes128_ctr_keystream(const uint8_t key[16], const uint8_t iv[16], uint8_t *out, size_t length) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) return -1;
    int ok = EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), NULL, key, iv);
    size_t done = 0;
    while (ok && done < length) {
        size_t step = length - done < sizeof zeros ? length - done : sizeof zeros;
        int written = 0;
        ok = EVP_EncryptUpdate(ctx, out + done, &written, zeros, (int)step);
        done += (size_t)written;
    }
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}
