// Unit tests for the CPU probe: the running CPU's features, and core topology parsed from
// synthetic sysfs trees (layouts shaped like a 4+3+1 phone SoC and an SMT desktop; they test
// the parsing, not any particular device).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "check.hpp"
#include "probe/cpu.hpp"

namespace fs = std::filesystem;

namespace {

/// A temporary directory laid out like /sys/devices/system/cpu.
class FakeSysfs {
public:
    FakeSysfs() {
        root_ = fs::temp_directory_path()
                / ("iris-probe-test-" + std::to_string(::getpid()) + "-"
                   + std::to_string(counter_++));
        fs::create_directories(root_);
    }
    FakeSysfs(const FakeSysfs&) = delete;
    FakeSysfs& operator=(const FakeSysfs&) = delete;
    ~FakeSysfs() { fs::remove_all(root_); }

    void write(const std::string& relative, const std::string& text) const {
        const fs::path path = root_ / relative;
        fs::create_directories(path.parent_path());
        std::ofstream(path) << text << "\n";
    }
    void cpu(unsigned index, const std::string& siblings, unsigned max_khz) const {
        const std::string base = "cpu" + std::to_string(index);
        write(base + "/topology/core_cpus_list", siblings);
        if (max_khz != 0) {
            write(base + "/cpufreq/cpuinfo_max_freq", std::to_string(max_khz));
        }
    }
    [[nodiscard]] std::string root() const { return root_.string(); }

private:
    static inline int counter_ = 0;
    fs::path root_;
};

}  // namespace

TEST(cpu_list_parser_handles_ranges_singles_and_junk) {
    CHECK((iris::probe::parse_cpu_list("0-3,6,8-9") == std::vector<uint32_t>{0, 1, 2, 3, 6, 8, 9}));
    CHECK((iris::probe::parse_cpu_list("5") == std::vector<uint32_t>{5}));
    CHECK(iris::probe::parse_cpu_list("").empty());
    CHECK(iris::probe::parse_cpu_list("x-y,3-1").empty());
    CHECK(iris::probe::parse_cpu_list("0-4294967295").empty());  // bounded, not 4 billion entries
}

TEST(phone_layout_gives_three_clusters_fastest_first) {
    const FakeSysfs sysfs;
    sysfs.write("online", "0-7");
    for (unsigned cpu = 0; cpu < 8; ++cpu) {
        const unsigned khz = cpu < 4 ? 1804800 : cpu < 7 ? 2419200 : 3187200;
        sysfs.cpu(cpu, std::to_string(cpu), khz);  // no SMT: each CPU is its own core
    }
    const auto topology = iris::probe::probe_core_topology(sysfs.root());
    CHECK(topology.logical_cores == 8);
    CHECK(topology.physical_cores == 8);
    CHECK(topology.clusters.size() == 3);
    CHECK(topology.clusters[0].max_frequency_khz == 3187200);
    CHECK((topology.clusters[0].cpus == std::vector<uint32_t>{7}));
    CHECK((topology.clusters[2].cpus == std::vector<uint32_t>{0, 1, 2, 3}));
}

TEST(smt_layout_counts_physical_cores_once) {
    const FakeSysfs sysfs;
    sysfs.write("online", "0-7");
    for (unsigned cpu = 0; cpu < 8; ++cpu) {
        const unsigned core = cpu % 4;  // cpu N and N+4 share a core, as Linux numbers them
        sysfs.cpu(cpu, std::to_string(core) + "," + std::to_string(core + 4), 0);
    }
    const auto topology = iris::probe::probe_core_topology(sysfs.root());
    CHECK(topology.logical_cores == 8);
    CHECK(topology.physical_cores == 4);
    CHECK(topology.clusters.size() == 1);
    CHECK(topology.clusters[0].max_frequency_khz == 0);
}

TEST(missing_topology_falls_back_to_logical_cpus) {
    const FakeSysfs sysfs;
    sysfs.write("online", "0-2");
    const auto topology = iris::probe::probe_core_topology(sysfs.root());
    CHECK(topology.logical_cores == 3);
    CHECK(topology.physical_cores == 3);
}

TEST(running_cpu_reports_its_architecture_and_consistent_features) {
    const auto cpu = iris::probe::probe_cpu_features();
    CHECK(!cpu.architecture.empty());
    const auto has = [&](const char* name) {
        return std::find(cpu.features.begin(), cpu.features.end(), name) != cpu.features.end();
    };
    // Implications that hold on every CPU: a feature never appears without what it builds on.
    CHECK(!has("avx2") || has("avx"));
    CHECK(!has("avx512bw") || has("avx512f"));
    CHECK(!has("sve2") || has("sve"));
    CHECK(has("sve") == (cpu.sve_vector_bits > 0));
#if defined(__aarch64__) && defined(__linux__)
    CHECK(has("neon"));  // mandatory on AArch64
#endif
}

int main() {
    return iris::testing::run_all();
}
