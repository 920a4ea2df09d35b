// What the running CPU and OS can execute (not what the binary was compiled for), and how
// the cores are arranged: logical and physical counts, and clusters of equal maximum clock
// (big.LITTLE / performance and efficiency cores).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace iris::probe {

struct CpuFeatures {
    std::string architecture;  // "x86_64", "aarch64", "arm", or the compiler's name for it
    std::string vendor;        // CPUID vendor on x86 ("AuthenticAMD"), empty elsewhere
    std::string brand;         // CPUID brand string on x86, empty elsewhere
    /// Usable instruction-set extensions, by the names llama.cpp's builds use: on x86
    /// sse3 ssse3 sse4.1 sse4.2 avx avx2 fma f16c bmi2 avx512f avx512bw avx512vl avx512dq
    /// avx512cd avx512vnni avx512vbmi avx512bf16 avx512fp16 avxvnni amx sha; on ARM neon
    /// dotprod fp16 i8mm bf16 sve sve2 sme sha2. AVX and AVX-512 count only when the OS
    /// saves their registers (XGETBV).
    std::vector<std::string> features;
    uint32_t sve_vector_bits = 0;  // 0 without SVE
};

CpuFeatures probe_cpu_features();

struct CoreCluster {
    uint64_t max_frequency_khz = 0;  // 0 when cpufreq is not readable
    std::vector<uint32_t> cpus;      // logical CPU numbers
};

struct CoreTopology {
    uint32_t logical_cores = 0;
    uint32_t physical_cores = 0;
    std::vector<CoreCluster> clusters;  // fastest first
    bool from_sysfs = false;  // false: no CPU list under the root, counts come from sysconf
};

/// Reads the online CPUs, their core and package ids, and their maximum frequencies under
/// `sysfs_cpu_root` (a parameter so that tests can point it at a copy from another device).
/// The CPUs are those listed in "online" (else "present", else "possible"); missing files
/// are normal (containers, old kernels, macOS): counts fall back to sysconf's CPUs.
CoreTopology probe_core_topology(const std::string& sysfs_cpu_root = "/sys/devices/system/cpu");

/// Parses a kernel CPU list such as "0-3,6,8-11"; malformed parts are skipped.
std::vector<uint32_t> parse_cpu_list(const std::string& text);

}  // namespace iris::probe
