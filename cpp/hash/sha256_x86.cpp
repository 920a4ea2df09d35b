// SHA-256 blocks with the x86 SHA extensions. Built with -msha -msse4.1 -mssse3 (this file
// only) and called only when CPUID says the CPU has them.
#include "hash/sha256_blocks.hpp"

#if defined(IRIS_HAVE_SHA_NI)

#include <immintrin.h>

namespace iris::hash::detail {

void compress_sha_ni(uint32_t* state, const uint8_t* blocks, size_t n_blocks) {
    // The SHA instructions keep the working variables as (A, B, E, F) and (C, D, G, H).
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state)), 0xB1);
    __m128i cdgh
        = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4)), 0x1B);
    __m128i abef = _mm_alignr_epi8(tmp, cdgh, 8);
    cdgh = _mm_blend_epi16(cdgh, tmp, 0xF0);

    for (; n_blocks > 0; --n_blocks, blocks += 64) {
        const __m128i abef_saved = abef;
        const __m128i cdgh_saved = cdgh;
        __m128i w[4];  // the last four message-schedule groups, W[g] in w[g % 4]
#pragma GCC unroll 16
        for (int g = 0; g < 16; ++g) {
            __m128i& current = w[g % 4];
            if (g < 4) {
                current = _mm_shuffle_epi8(
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + 16 * g)), byte_swap);
            } else {
                // W[g] = msg2(msg1(W[g-4], W[g-3]) + (W[g-1]:W[g-2] >> 32 bits), W[g-1])
                const __m128i& w3 = w[(g + 3) % 4];
                const __m128i shifted = _mm_alignr_epi8(w3, w[(g + 2) % 4], 4);
                current = _mm_sha256msg2_epu32(
                    _mm_add_epi32(_mm_sha256msg1_epu32(current, w[(g + 1) % 4]), shifted), w3);
            }
            __m128i message = _mm_add_epi32(
                current,
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(&kSha256RoundConstants[4 * g])));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, message);
            message = _mm_shuffle_epi32(message, 0x0E);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, message);
        }
        abef = _mm_add_epi32(abef, abef_saved);
        cdgh = _mm_add_epi32(cdgh, cdgh_saved);
    }

    tmp = _mm_shuffle_epi32(abef, 0x1B);
    cdgh = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(tmp, cdgh, 0xF0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(cdgh, tmp, 8));
}

}  // namespace iris::hash::detail

#endif
