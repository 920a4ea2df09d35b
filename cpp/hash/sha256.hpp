// SHA-256 (FIPS 180-4) with the block function chosen at run time from what the CPU offers:
// the x86 SHA extensions, the ARMv8 cryptography extensions, or portable C++.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace iris::hash {

enum class Sha256Backend : uint8_t { Portable, ShaNi, ArmV8 };

using Sha256Digest = std::array<uint8_t, 32>;

/// Processes `n_blocks` 64-byte blocks into `state`.
using Sha256Compress = void (*)(uint32_t* state, const uint8_t* blocks, size_t n_blocks);

const char* backend_name(Sha256Backend backend) noexcept;

/// The backends this build contains and this CPU (and OS) can run, fastest first.
const std::vector<Sha256Backend>& available_backends();

/// The fastest available backend.
Sha256Backend best_backend();

/// Incremental SHA-256. Copyable: a copy continues from the same state, so digests of
/// prefixes cost nothing extra.
class Sha256 {
public:
    explicit Sha256(Sha256Backend backend = best_backend());

    void update(const uint8_t* data, size_t size);
    /// The digest of everything given so far; the object can keep taking updates.
    [[nodiscard]] Sha256Digest digest() const;
    [[nodiscard]] uint64_t bytes_hashed() const noexcept { return total_bytes_; }
    [[nodiscard]] Sha256Backend backend() const noexcept { return backend_; }

    /// The running state as SAVED_STATE_SIZE bytes, so that another process can continue
    /// where this one stopped (a resumed download hashes only what it has not hashed yet):
    /// a tag, the eight state words, the byte count and the pending partial block.
    [[nodiscard]] std::vector<uint8_t> save() const;
    /// A hasher continuing from saved bytes; throws std::invalid_argument for bytes that
    /// `save` did not write (a wrong tag or size, or a pending length the count contradicts).
    static Sha256 restore(const uint8_t* data, size_t size, Sha256Backend backend = best_backend());

    static constexpr size_t SAVED_STATE_SIZE = 4 + 32 + 8 + 64;

private:
    std::array<uint32_t, 8> state_;
    std::array<uint8_t, 64> pending_{};
    size_t pending_size_ = 0;
    uint64_t total_bytes_ = 0;
    Sha256Backend backend_;
    Sha256Compress compress_;
};

std::string to_hex(const Sha256Digest& digest);

}  // namespace iris::hash
