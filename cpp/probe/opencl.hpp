// OpenCL platforms and devices, found through the ICD loader (or a vendor library that
// exports the cl* entry points itself, as Mali's GLES blob does) opened at run time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "probe/api_status.hpp"

namespace iris::probe {

struct OpenCLDevice {
    std::string name;
    std::string vendor;
    uint32_t vendor_id = 0;
    std::string version;  // "OpenCL 3.0 Adreno(TM) 750"
    std::string driver_version;
    std::string opencl_c_version;  // "OpenCL C 2.0 Adreno(TM) 750"
    std::string device_type;       // "gpu", "cpu", "accelerator", "custom" or "other"
    uint64_t global_memory_bytes = 0;
    uint64_t max_allocation_bytes = 0;
    uint32_t compute_units = 0;
    uint32_t max_clock_mhz = 0;
    bool host_unified_memory = false;
    std::vector<std::string> extensions;
};

struct OpenCLPlatform {
    std::string name;
    std::string vendor;
    std::string version;
    std::string error;  // set when the platform's devices could not be listed
    std::vector<OpenCLDevice> devices;
};

struct OpenCLReport {
    ApiStatus status = ApiStatus::NotInstalled;
    std::string detail;
    std::string library;
    std::vector<OpenCLPlatform> platforms;
};

/// The OpenCL libraries to try on this platform, in order (Android's vendor paths included).
std::vector<std::string> default_opencl_libraries();

/// Opens the first library in `libraries` that loads and lists every platform and device.
/// Never throws for a missing or broken runtime: that is in the report.
OpenCLReport probe_opencl(const std::vector<std::string>& libraries);

}  // namespace iris::probe
