// Overflow-checked 64-bit arithmetic for sizes and offsets read from untrusted files.
// Every product or sum built from a file's claims goes through these, never raw + or *.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>

namespace iris {

inline constexpr std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
    if (b > std::numeric_limits<uint64_t>::max() - a) {
        return std::nullopt;
    }
    return a + b;
}

inline constexpr std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
    if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) {
        return std::nullopt;
    }
    return a * b;
}

inline constexpr bool is_power_of_two(uint64_t x) {
    return x != 0 && (x & (x - 1)) == 0;
}

/// Round `x` up to a multiple of `alignment` (a power of two); nullopt when that overflows.
inline constexpr std::optional<uint64_t> checked_align_up(uint64_t x, uint64_t alignment) {
    const auto bumped = checked_add(x, alignment - 1);
    if (!bumped) {
        return std::nullopt;
    }
    return *bumped & ~(alignment - 1);
}

}  // namespace iris
