// What the kernel says about the system-on-chip: /proc/cpuinfo's per-CPU identification
// (the "Hardware" line vendor kernels keep, ARM part numbers, x86 model names) and
// /sys/devices/soc0. Inputs are parameters so that tests can use captures from real devices.
#pragma once

#include <string>
#include <vector>

namespace iris::probe {

struct CpuInfoText {
    std::string hardware;                // "Qualcomm Technologies, Inc SM8450"; "" when absent
    std::string model_name;              // x86 "model name", or 32-bit ARM "Processor"/"model name"
    std::vector<std::string> features;   // the first "Features"/"flags" line's words
    std::vector<std::string> cpu_parts;  // distinct ARM "CPU part" values, "0xd44"
    std::vector<std::string> implementers;  // distinct ARM "CPU implementer" values, "0x41"
    unsigned processors = 0;                // "processor" entries
};

/// Parses the text of /proc/cpuinfo. Unknown lines are ignored; nothing throws.
CpuInfoText parse_cpuinfo(const std::string& text);

struct SocFiles {
    std::string machine;  // "SM8550"
    std::string family;   // "Snapdragon"
    std::string soc_id;   // Qualcomm's numeric msm-id, "519"
    std::string vendor;
    std::string revision;
};

/// Reads the soc0 attributes under `soc_root`; missing or unreadable files are left empty.
SocFiles read_soc_files(const std::string& soc_root = "/sys/devices/soc0");

/// The contents of a small text file (at most `limit` bytes), or "" when it cannot be read.
std::string read_text_file(const std::string& path, std::size_t limit = 4U << 20U);

}  // namespace iris::probe
