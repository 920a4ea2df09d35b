#include "hash/sha256.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "hash/sha256_blocks.hpp"

#if defined(IRIS_HAVE_SHA_NI)
#include <cpuid.h>
#endif
#if defined(IRIS_HAVE_ARMV8_SHA2) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace iris::hash {
namespace detail {

const uint32_t kSha256RoundConstants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

namespace {

constexpr uint32_t rotr(uint32_t x, int n) {
    return (x >> n) | (x << (32 - n));
}

uint32_t load_be32(const uint8_t* p) {
    return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

}  // namespace

void compress_portable(uint32_t* state, const uint8_t* blocks, size_t n_blocks) {
    for (; n_blocks > 0; --n_blocks, blocks += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; ++i) {
            w[i] = load_be32(blocks + 4 * i);
        }
        for (int i = 16; i < 64; ++i) {
            const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int i = 0; i < 64; ++i) {
            const uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
            const uint32_t choose = (e & f) ^ (~e & g);
            const uint32_t t1 = h + s1 + choose + kSha256RoundConstants[i] + w[i];
            const uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
            const uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
            const uint32_t t2 = s0 + majority;
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
    }
}

}  // namespace detail

namespace {

constexpr std::array<uint32_t, 8> kInitialState = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

bool cpu_has_sha_ni() {
#if defined(IRIS_HAVE_SHA_NI)
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_max(0, nullptr) < 7) {
        return false;
    }
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    const bool sha = (ebx >> 29) & 1u;
    __cpuid(1, eax, ebx, ecx, edx);
    const bool ssse3 = (ecx >> 9) & 1u;
    const bool sse41 = (ecx >> 19) & 1u;
    return sha && ssse3 && sse41;  // SSE state is always enabled by x86-64 operating systems
#else
    return false;
#endif
}

bool cpu_has_armv8_sha2() {
#if defined(IRIS_HAVE_ARMV8_SHA2) && defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_SHA2) != 0;
#elif defined(IRIS_HAVE_ARMV8_SHA2) && defined(__APPLE__)
    return true;  // every Apple-silicon CPU has the SHA-2 instructions
#else
    return false;
#endif
}

Sha256Compress compress_for(Sha256Backend backend) {
    switch (backend) {
#if defined(IRIS_HAVE_SHA_NI)
    case Sha256Backend::ShaNi:
        return detail::compress_sha_ni;
#endif
#if defined(IRIS_HAVE_ARMV8_SHA2)
    case Sha256Backend::ArmV8:
        return detail::compress_armv8;
#endif
    default:
        return detail::compress_portable;
    }
}

}  // namespace

const char* backend_name(Sha256Backend backend) noexcept {
    switch (backend) {
    case Sha256Backend::Portable:
        return "portable";
    case Sha256Backend::ShaNi:
        return "sha-ni";
    case Sha256Backend::ArmV8:
        return "armv8";
    }
    return "unknown";
}

const std::vector<Sha256Backend>& available_backends() {
    // CPU features do not change while the process runs: detect once.
    static const std::vector<Sha256Backend> found = [] {
        std::vector<Sha256Backend> usable;
        if (cpu_has_sha_ni()) {
            usable.push_back(Sha256Backend::ShaNi);
        }
        if (cpu_has_armv8_sha2()) {
            usable.push_back(Sha256Backend::ArmV8);
        }
        usable.push_back(Sha256Backend::Portable);
        return usable;
    }();
    return found;
}

Sha256Backend best_backend() {
    return available_backends().front();
}

Sha256::Sha256(Sha256Backend backend)
    : state_(kInitialState), backend_(backend), compress_(compress_for(backend)) {
    const auto& usable = available_backends();
    if (std::find(usable.begin(), usable.end(), backend) == usable.end()) {
        throw std::invalid_argument(std::string("SHA-256 backend '") + backend_name(backend)
                                    + "' is not available on this CPU");
    }
}

void Sha256::update(const uint8_t* data, size_t size) {
    total_bytes_ += size;
    if (pending_size_ > 0) {
        const size_t take = std::min(size, pending_.size() - pending_size_);
        std::memcpy(pending_.data() + pending_size_, data, take);
        pending_size_ += take;
        data += take;
        size -= take;
        if (pending_size_ < pending_.size()) {
            return;
        }
        compress_(state_.data(), pending_.data(), 1);
        pending_size_ = 0;
    }
    const size_t whole_blocks = size / 64;
    if (whole_blocks > 0) {
        compress_(state_.data(), data, whole_blocks);
        data += whole_blocks * 64;
        size -= whole_blocks * 64;
    }
    std::memcpy(pending_.data(), data, size);
    pending_size_ = size;
}

namespace {
constexpr std::array<uint8_t, 4> SAVED_TAG{'S', '2', '5', '1'};  // format 1

void put_u32(uint8_t* out, uint32_t value) {
    for (size_t i = 0; i < 4; ++i) {
        out[i] = static_cast<uint8_t>(value >> (8 * i));
    }
}

void put_u64(uint8_t* out, uint64_t value) {
    for (size_t i = 0; i < 8; ++i) {
        out[i] = static_cast<uint8_t>(value >> (8 * i));
    }
}

uint32_t get_u32(const uint8_t* in) {
    uint32_t value = 0;
    for (size_t i = 0; i < 4; ++i) {
        value |= static_cast<uint32_t>(in[i]) << (8 * i);
    }
    return value;
}

uint64_t get_u64(const uint8_t* in) {
    uint64_t value = 0;
    for (size_t i = 0; i < 8; ++i) {
        value |= static_cast<uint64_t>(in[i]) << (8 * i);
    }
    return value;
}
}  // namespace

std::vector<uint8_t> Sha256::save() const {
    // Little-endian throughout; the pending bytes are stored whole (zeros past their length),
    // their length is implied by the count (count mod 64).
    std::vector<uint8_t> out(SAVED_STATE_SIZE, 0);
    std::memcpy(out.data(), SAVED_TAG.data(), SAVED_TAG.size());
    for (size_t i = 0; i < 8; ++i) {
        put_u32(out.data() + 4 + 4 * i, state_[i]);
    }
    put_u64(out.data() + 36, total_bytes_);
    std::memcpy(out.data() + 44, pending_.data(), pending_size_);
    return out;
}

Sha256 Sha256::restore(const uint8_t* data, size_t size, Sha256Backend backend) {
    if (size != SAVED_STATE_SIZE || std::memcmp(data, SAVED_TAG.data(), SAVED_TAG.size()) != 0) {
        throw std::invalid_argument("not a saved SHA-256 state (wrong size or tag)");
    }
    Sha256 hasher(backend);
    for (size_t i = 0; i < 8; ++i) {
        hasher.state_[i] = get_u32(data + 4 + 4 * i);
    }
    hasher.total_bytes_ = get_u64(data + 36);
    hasher.pending_size_ = static_cast<size_t>(hasher.total_bytes_ % 64);
    std::memcpy(hasher.pending_.data(), data + 44, hasher.pending_size_);
    for (size_t i = hasher.pending_size_; i < 64; ++i) {
        if (data[44 + i] != 0) {
            throw std::invalid_argument("not a saved SHA-256 state (bytes past the pending block)");
        }
    }
    return hasher;
}

Sha256Digest Sha256::digest() const {
    // Padding: 0x80, zeros, then the message length in bits, big-endian, in the last 8 bytes.
    std::array<uint32_t, 8> state = state_;
    std::array<uint8_t, 128> tail{};
    std::memcpy(tail.data(), pending_.data(), pending_size_);
    tail[pending_size_] = 0x80;
    const size_t tail_size = pending_size_ + 1 + 8 <= 64 ? 64 : 128;
    const uint64_t bits = total_bytes_ * 8;
    for (int i = 0; i < 8; ++i) {
        tail[tail_size - 1 - static_cast<size_t>(i)] = static_cast<uint8_t>(bits >> (8 * i));
    }
    compress_(state.data(), tail.data(), tail_size / 64);
    Sha256Digest out{};
    for (size_t i = 0; i < 8; ++i) {
        out[4 * i] = static_cast<uint8_t>(state[i] >> 24);
        out[4 * i + 1] = static_cast<uint8_t>(state[i] >> 16);
        out[4 * i + 2] = static_cast<uint8_t>(state[i] >> 8);
        out[4 * i + 3] = static_cast<uint8_t>(state[i]);
    }
    return out;
}

std::string to_hex(const Sha256Digest& digest) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(64, '0');
    for (size_t i = 0; i < digest.size(); ++i) {
        out[2 * i] = kHex[digest[i] >> 4];
        out[2 * i + 1] = kHex[digest[i] & 15];
    }
    return out;
}

}  // namespace iris::hash
