// The per-CPU SHA-256 block functions, each in its own file so that only that file is
// compiled with the instruction-set flags it needs (the rest of the library must run on
// any CPU of the target architecture).
#pragma once

#include <cstddef>
#include <cstdint>

namespace iris::hash::detail {

extern const uint32_t kSha256RoundConstants[64];

void compress_portable(uint32_t* state, const uint8_t* blocks, size_t n_blocks);

#if defined(__x86_64__) || defined(__i386__)
#define IRIS_HAVE_SHA_NI 1
void compress_sha_ni(uint32_t* state, const uint8_t* blocks, size_t n_blocks);
#endif

#if defined(__aarch64__)
#define IRIS_HAVE_ARMV8_SHA2 1
void compress_armv8(uint32_t* state, const uint8_t* blocks, size_t n_blocks);
#endif

}  // namespace iris::hash::detail
