#include "probe/cuda.hpp"

#include <array>

#include "probe/shared_library.hpp"

namespace iris::probe {
namespace {

// The CUDA driver API, declared by hand (values from cuda.h).
using CUresult = int;
using CUdevice = int;
constexpr CUresult kSuccess = 0;
constexpr CUresult kErrorNoDevice = 100;
constexpr CUresult kErrorInsufficientDriver = 35;
constexpr int kAttributeMultiprocessorCount = 16;
constexpr int kAttributeComputeCapabilityMajor = 75;
constexpr int kAttributeComputeCapabilityMinor = 76;
constexpr int kMaxDevices = 64;

using Init = CUresult (*)(unsigned int);
using DriverGetVersion = CUresult (*)(int*);
using DeviceGetCount = CUresult (*)(int*);
using DeviceGet = CUresult (*)(CUdevice*, int);
using DeviceGetName = CUresult (*)(char*, int, CUdevice);
using DeviceTotalMem = CUresult (*)(size_t*, CUdevice);
using DeviceGetAttribute = CUresult (*)(int*, int, CUdevice);

}  // namespace

std::vector<std::string> default_cuda_libraries() {
#if defined(__linux__) && !defined(__ANDROID__)
    return {"libcuda.so.1", "libcuda.so"};
#else
    return {};
#endif
}

CudaReport probe_cuda(const std::vector<std::string>& libraries) {
    CudaReport report;
    SharedLibrary library = SharedLibrary::open_first(libraries);
    if (!library.is_open()) {
        report.status = ApiStatus::NotInstalled;
        report.detail = libraries.empty() ? "CUDA does not exist on this platform"
                                          : "no CUDA driver library (libcuda)";
        return report;
    }
    report.library = library.name();
    const auto init = library.function<Init>("cuInit");
    const auto driver_version = library.function<DriverGetVersion>("cuDriverGetVersion");
    const auto device_count = library.function<DeviceGetCount>("cuDeviceGetCount");
    const auto device_get = library.function<DeviceGet>("cuDeviceGet");
    const auto device_name = library.function<DeviceGetName>("cuDeviceGetName");
    const auto total_memory = library.function<DeviceTotalMem>("cuDeviceTotalMem_v2");
    const auto attribute = library.function<DeviceGetAttribute>("cuDeviceGetAttribute");
    if (init == nullptr || driver_version == nullptr || device_count == nullptr
        || device_get == nullptr || device_name == nullptr || total_memory == nullptr
        || attribute == nullptr) {
        report.status = ApiStatus::Error;
        report.detail = report.library + " does not export the CUDA driver API";
        return report;
    }
    const CUresult initialised = init(0);
    if (initialised == kErrorNoDevice || initialised == kErrorInsufficientDriver) {
        report.status = ApiStatus::NoDriver;
        report.detail = initialised == kErrorNoDevice
                            ? "the CUDA driver found no device"
                            : "the installed NVIDIA driver is older than its CUDA library";
        return report;
    }
    if (initialised != kSuccess) {
        report.status = ApiStatus::Error;
        report.detail = "cuInit failed with error " + std::to_string(initialised);
        return report;
    }
    int version = 0;
    if (driver_version(&version) == kSuccess) {
        report.driver_version
            = std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
    }
    int count = 0;
    if (device_count(&count) != kSuccess) {
        report.status = ApiStatus::Error;
        report.detail = "cuDeviceGetCount failed";
        return report;
    }
    report.status = ApiStatus::Ok;
    for (int ordinal = 0; ordinal < count && ordinal < kMaxDevices; ++ordinal) {
        CUdevice handle = 0;
        if (device_get(&handle, ordinal) != kSuccess) {
            continue;
        }
        CudaDevice device;
        std::array<char, 256> name{};
        if (device_name(name.data(), static_cast<int>(name.size()), handle) == kSuccess) {
            device.name = bounded_string(name.data(), name.size());
        }
        size_t memory = 0;
        if (total_memory(&memory, handle) == kSuccess) {
            device.memory_bytes = memory;
        }
        attribute(&device.compute_capability_major, kAttributeComputeCapabilityMajor, handle);
        attribute(&device.compute_capability_minor, kAttributeComputeCapabilityMinor, handle);
        attribute(&device.multiprocessors, kAttributeMultiprocessorCount, handle);
        report.devices.push_back(device);
    }
    return report;
}

}  // namespace iris::probe
