// NVIDIA GPUs through the CUDA driver library (libcuda) opened at run time: the driver's
// CUDA version and each device's name, compute capability, multiprocessors and memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "probe/api_status.hpp"

namespace iris::probe {

struct CudaDevice {
    std::string name;
    int compute_capability_major = 0;
    int compute_capability_minor = 0;
    int multiprocessors = 0;
    uint64_t memory_bytes = 0;
};

struct CudaReport {
    ApiStatus status = ApiStatus::NotInstalled;
    std::string detail;
    std::string library;
    std::string driver_version;  // the CUDA version the driver supports, "12.4"
    std::vector<CudaDevice> devices;
};

std::vector<std::string> default_cuda_libraries();

/// Opens the first library in `libraries` that loads, initialises the driver API and reads
/// every device. Never throws for a missing or broken runtime: that is in the report.
CudaReport probe_cuda(const std::vector<std::string>& libraries);

}  // namespace iris::probe
