#include "CKeystream.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// Encrypting zeros gives the keystream. The zeros are read from one small buffer that stays
// in cache; the output goes straight to the caller's memory.
static const uint8_t zeros[64 * 1024];

// The verification compares 64 KiB at a time, so the keystream is asked for in 64 KiB pieces:
// fetching the cipher and expanding the key for each would cost more than the AES itself.
// Each thread keeps one context, keyed for the last key it saw; only the counter is reset
// between calls. The context is freed when the thread ends.
struct cached_context {
    EVP_CIPHER_CTX *ctx;
    uint8_t key[16];
    int keyed;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t slot;
static EVP_CIPHER *cipher;

static void release(void *pointer) {
    struct cached_context *cache = pointer;
    EVP_CIPHER_CTX_free(cache->ctx);
    OPENSSL_cleanse(cache->key, sizeof cache->key);
    free(cache);
}

static void setup(void) {
    if (pthread_key_create(&slot, release) == 0) cipher = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL);
}

static struct cached_context *context(void) {
    struct cached_context *cache = pthread_getspecific(slot);
    if (cache != NULL) return cache;
    cache = calloc(1, sizeof *cache);
    if (cache == NULL) return NULL;
    cache->ctx = EVP_CIPHER_CTX_new();
    if (cache->ctx == NULL || pthread_setspecific(slot, cache) != 0) {
        EVP_CIPHER_CTX_free(cache->ctx);
        free(cache);
        return NULL;
    }
    return cache;
}

int lethe_aes128_ctr_keystream(const uint8_t key[16], const uint8_t iv[16], uint8_t *out, size_t length) {
    pthread_once(&once, setup);
    if (cipher == NULL) return -1;
    struct cached_context *cache = context();
    if (cache == NULL) return -1;
    int ok;
    if (cache->keyed && memcmp(cache->key, key, 16) == 0) {
        ok = EVP_EncryptInit_ex2(cache->ctx, NULL, NULL, iv, NULL);
    } else {
        ok = EVP_EncryptInit_ex2(cache->ctx, cipher, key, iv, NULL);
        memcpy(cache->key, key, 16);
        cache->keyed = ok;
    }
    size_t done = 0;
    while (ok && done < length) {
        size_t step = length - done < sizeof zeros ? length - done : sizeof zeros;
        int written = 0;
        ok = EVP_EncryptUpdate(cache->ctx, out + done, &written, zeros, (int)step);
        done += (size_t)written;
    }
    if (!ok) cache->keyed = 0;
    return ok ? 0 : -1;
}
