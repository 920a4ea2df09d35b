#include "probe/cpu.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#include <sys/prctl.h>
#endif

namespace iris::probe {
namespace {

#if defined(__x86_64__) || defined(__i386__)

struct Registers {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Registers cpuid(unsigned leaf, unsigned subleaf = 0) {
    Registers r;
    __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
    return r;
}

bool bit(unsigned value, int index) {
    return ((value >> index) & 1u) != 0;
}

/// XCR0, which says which register states the OS saves on a context switch. Read with the
/// instruction's bytes so that no -mxsave is needed; only called when OSXSAVE is set.
uint64_t read_xcr0() {
    uint32_t low = 0;
    uint32_t high = 0;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(low), "=d"(high) : "c"(0));
    return (uint64_t{high} << 32) | low;
}

void probe_x86(CpuFeatures& out) {
    out.architecture = sizeof(void*) == 8 ? "x86_64" : "x86";
    // gcc's cpuid.h returns unsigned here and clang's int: cast for both.
    const auto max_leaf = static_cast<unsigned>(__get_cpuid_max(0, nullptr));
    const Registers vendor = cpuid(0);
    char vendor_text[13] = {};
    std::memcpy(vendor_text, &vendor.ebx, 4);
    std::memcpy(vendor_text + 4, &vendor.edx, 4);
    std::memcpy(vendor_text + 8, &vendor.ecx, 4);
    out.vendor = vendor_text;
    if (static_cast<unsigned>(__get_cpuid_max(0x80000000, nullptr)) >= 0x80000004u) {
        char brand[49] = {};
        for (unsigned i = 0; i < 3; ++i) {
            const Registers r = cpuid(0x80000002 + i);
            std::memcpy(brand + 16 * i, &r, 16);
        }
        out.brand = brand;
        const auto first = out.brand.find_first_not_of(' ');
        out.brand = first == std::string::npos ? "" : out.brand.substr(first);
        while (!out.brand.empty() && out.brand.back() == ' ') {
            out.brand.pop_back();
        }
    }
    auto& f = out.features;
    const Registers l1 = cpuid(1);
    const bool osxsave = bit(l1.ecx, 27);
    const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    const bool os_avx = (xcr0 & 0x6) == 0x6;       // SSE and AVX state
    const bool os_avx512 = (xcr0 & 0xE6) == 0xE6;  // plus opmask, ZMM_Hi256, Hi16_ZMM
    const bool os_amx = (xcr0 & 0x60000) == 0x60000;
    const auto add = [&](bool present, const char* name) {
        if (present) {
            f.emplace_back(name);
        }
    };
    add(bit(l1.ecx, 0), "sse3");
    add(bit(l1.ecx, 9), "ssse3");
    add(bit(l1.ecx, 19), "sse4.1");
    add(bit(l1.ecx, 20), "sse4.2");
    add(os_avx && bit(l1.ecx, 28), "avx");
    add(os_avx && bit(l1.ecx, 12), "fma");
    add(os_avx && bit(l1.ecx, 29), "f16c");
    if (max_leaf >= 7) {
        const Registers l7 = cpuid(7, 0);
        const Registers l7_1 = cpuid(7, 1);
        add(os_avx && bit(l7.ebx, 5), "avx2");
        add(bit(l7.ebx, 8), "bmi2");
        add(os_avx512 && bit(l7.ebx, 16), "avx512f");
        add(os_avx512 && bit(l7.ebx, 17), "avx512dq");
        add(os_avx512 && bit(l7.ebx, 28), "avx512cd");
        add(os_avx512 && bit(l7.ebx, 30), "avx512bw");
        add(os_avx512 && bit(l7.ebx, 31), "avx512vl");
        add(os_avx512 && bit(l7.ecx, 1), "avx512vbmi");
        add(os_avx512 && bit(l7.ecx, 11), "avx512vnni");
        add(os_avx512 && bit(l7.edx, 23), "avx512fp16");
        add(os_avx512 && bit(l7_1.eax, 5), "avx512bf16");
        add(os_avx && bit(l7_1.eax, 4), "avxvnni");
        add(os_amx && bit(l7.edx, 24) && bit(l7.edx, 25), "amx");
        add(bit(l7.ebx, 29), "sha");
    }
}

#endif

#if defined(__aarch64__) && defined(__linux__)

void probe_arm64(CpuFeatures& out) {
    out.architecture = "aarch64";
    // Bit numbers from the kernel's uapi asm/hwcap.h, spelled out so that old headers
    // (Android NDKs) still build.
    const unsigned long hwcap = getauxval(AT_HWCAP);
    const unsigned long hwcap2 = getauxval(AT_HWCAP2);
    const auto add = [&](bool present, const char* name) {
        if (present) {
            out.features.emplace_back(name);
        }
    };
    add(hwcap & (1ul << 1), "neon");
    add(hwcap & (1ul << 20), "dotprod");
    add((hwcap & (1ul << 9)) && (hwcap & (1ul << 10)), "fp16");
    add(hwcap2 & (1ul << 13), "i8mm");
    add(hwcap2 & (1ul << 14), "bf16");
    const bool sve = (hwcap & (1ul << 22)) != 0;
    add(sve, "sve");
    add(hwcap2 & (1ul << 1), "sve2");
    add(hwcap2 & (1ul << 23), "sme");
    add(hwcap & (1ul << 6), "sha2");
    if (sve) {
        const int vl = prctl(51 /* PR_SVE_GET_VL */);
        if (vl > 0) {
            out.sve_vector_bits = static_cast<uint32_t>(vl & 0xffff) * 8;
        }
    }
}

#endif

std::string read_first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

bool read_number(const std::string& path, uint64_t& value) {
    std::ifstream in(path);
    return static_cast<bool>(in >> value);
}

}  // namespace

CpuFeatures probe_cpu_features() {
    CpuFeatures out;
#if defined(__x86_64__) || defined(__i386__)
    probe_x86(out);
#elif defined(__aarch64__) && defined(__linux__)
    probe_arm64(out);
#elif defined(__aarch64__)
    out.architecture = "aarch64";
#elif defined(__arm__)
    out.architecture = "arm";
#else
    out.architecture = "unknown";
#endif
    return out;
}

std::vector<uint32_t> parse_cpu_list(const std::string& text) {
    std::vector<uint32_t> cpus;
    std::stringstream parts(text);
    std::string part;
    while (std::getline(parts, part, ',')) {
        unsigned long first = 0;
        unsigned long last = 0;
        char dash = 0;
        std::stringstream range(part);
        if (!(range >> first)) {
            continue;
        }
        last = first;
        if (range >> dash && (dash != '-' || !(range >> last))) {
            continue;
        }
        // A bound keeps a corrupt list ("0-4294967295") from allocating gigabytes.
        if (last < first || last - first > 65535) {
            continue;
        }
        for (unsigned long cpu = first; cpu <= last; ++cpu) {
            cpus.push_back(static_cast<uint32_t>(cpu));
        }
    }
    std::sort(cpus.begin(), cpus.end());
    cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
    return cpus;
}

CoreTopology probe_core_topology(const std::string& sysfs_cpu_root) {
    CoreTopology topology;
    // Old kernels and some captures lack "online"; "present", then "possible", are the next
    // best lists of the CPUs this tree describes.
    std::vector<uint32_t> cpus;
    for (const char* list : {"/online", "/present", "/possible"}) {
        cpus = parse_cpu_list(read_first_line(sysfs_cpu_root + list));
        if (!cpus.empty()) {
            break;
        }
    }
    topology.from_sysfs = !cpus.empty();
    if (cpus.empty()) {
        const long count = ::sysconf(_SC_NPROCESSORS_ONLN);
        for (long cpu = 0; cpu < std::max(1L, count); ++cpu) {
            cpus.push_back(static_cast<uint32_t>(cpu));
        }
    }
    topology.logical_cores = static_cast<uint32_t>(cpus.size());
    // A physical core is the set of logical CPUs that share it (SMT siblings). Counting the
    // distinct sibling lists is robust where core_id restarts per cluster (ARM big.LITTLE).
    std::set<std::vector<uint32_t>> physical;
    std::map<uint64_t, std::vector<uint32_t>, std::greater<>> by_frequency;
    for (const uint32_t cpu : cpus) {
        const std::string base = sysfs_cpu_root + "/cpu" + std::to_string(cpu);
        std::string siblings = read_first_line(base + "/topology/core_cpus_list");
        if (siblings.empty()) {
            siblings = read_first_line(base + "/topology/thread_siblings_list");
        }
        std::vector<uint32_t> sibling_cpus = parse_cpu_list(siblings);
        if (sibling_cpus.empty()) {
            sibling_cpus = {cpu};  // no topology: each logical CPU counts as a core
        }
        physical.insert(std::move(sibling_cpus));
        uint64_t max_khz = 0;
        read_number(base + "/cpufreq/cpuinfo_max_freq", max_khz);
        by_frequency[max_khz].push_back(cpu);
    }
    topology.physical_cores = static_cast<uint32_t>(physical.size());
    for (auto& [khz, members] : by_frequency) {
        topology.clusters.push_back({khz, std::move(members)});
    }
    return topology;
}

}  // namespace iris::probe
