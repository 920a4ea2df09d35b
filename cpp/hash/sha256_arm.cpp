// SHA-256 blocks with the ARMv8 cryptography extensions. Built with +crypto (this file only)
// and called only when the OS reports HWCAP_SHA2.
#include "hash/sha256_blocks.hpp"

#if defined(IRIS_HAVE_ARMV8_SHA2)

#include <arm_neon.h>

namespace iris::hash::detail {

void compress_armv8(uint32_t* state, const uint8_t* blocks, size_t n_blocks) {
    uint32x4_t abcd = vld1q_u32(state);
    uint32x4_t efgh = vld1q_u32(state + 4);
    for (; n_blocks > 0; --n_blocks, blocks += 64) {
        const uint32x4_t abcd_saved = abcd;
        const uint32x4_t efgh_saved = efgh;
        uint32x4_t w[4];  // the last four message-schedule groups, W[g] in w[g % 4]
#pragma GCC unroll 16
        for (int g = 0; g < 16; ++g) {
            uint32x4_t& current = w[g % 4];
            if (g < 4) {
                current = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(blocks + 16 * g)));
            } else {
                current = vsha256su1q_u32(vsha256su0q_u32(current, w[(g + 1) % 4]), w[(g + 2) % 4],
                                          w[(g + 3) % 4]);
            }
            const uint32x4_t message = vaddq_u32(current, vld1q_u32(&kSha256RoundConstants[4 * g]));
            const uint32x4_t abcd_before = abcd;
            abcd = vsha256hq_u32(abcd, efgh, message);
            efgh = vsha256h2q_u32(efgh, abcd_before, message);
        }
        abcd = vaddq_u32(abcd, abcd_saved);
        efgh = vaddq_u32(efgh, efgh_saved);
    }
    vst1q_u32(state, abcd);
    vst1q_u32(state + 4, efgh);
}

}  // namespace iris::hash::detail

#endif
