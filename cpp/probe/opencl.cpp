#include "probe/opencl.hpp"

#include <sstream>

#include "probe/shared_library.hpp"

namespace iris::probe {
namespace {

// The OpenCL C ABI, declared by hand (values from CL/cl.h) so that no headers are needed.
using cl_int = int32_t;
using cl_uint = uint32_t;
using cl_ulong = uint64_t;
using cl_bitfield = cl_ulong;
struct PlatformHandle;
struct DeviceHandle;
using cl_platform_id = PlatformHandle*;
using cl_device_id = DeviceHandle*;

constexpr cl_int kSuccess = 0;
constexpr cl_int kDeviceNotFound = -1;
constexpr cl_int kPlatformNotFoundKhr = -1001;
constexpr cl_uint kPlatformVersion = 0x0901;
constexpr cl_uint kPlatformName = 0x0902;
constexpr cl_uint kPlatformVendor = 0x0903;
constexpr cl_uint kDeviceType = 0x1000;
constexpr cl_uint kDeviceVendorId = 0x1001;
constexpr cl_uint kDeviceMaxComputeUnits = 0x1002;
constexpr cl_uint kDeviceMaxClockFrequency = 0x100C;
constexpr cl_uint kDeviceMaxMemAllocSize = 0x1010;
constexpr cl_uint kDeviceGlobalMemSize = 0x101F;
constexpr cl_uint kDeviceName = 0x102B;
constexpr cl_uint kDeviceVendor = 0x102C;
constexpr cl_uint kDriverVersion = 0x102D;
constexpr cl_uint kDeviceVersion = 0x102F;
constexpr cl_uint kDeviceExtensions = 0x1030;
constexpr cl_uint kDeviceHostUnifiedMemory = 0x1035;
constexpr cl_uint kDeviceOpenclCVersion = 0x103D;
constexpr cl_bitfield kDeviceTypeAll = 0xFFFFFFFF;
constexpr cl_bitfield kDeviceTypeCpu = 1U << 1U;
constexpr cl_bitfield kDeviceTypeGpu = 1U << 2U;
constexpr cl_bitfield kDeviceTypeAccelerator = 1U << 3U;
constexpr cl_bitfield kDeviceTypeCustom = 1U << 4U;
// Far more than any real system has; bounds what a broken ICD can make us allocate.
constexpr cl_uint kMaxEntries = 64;
constexpr size_t kMaxInfoBytes = 1U << 20U;

using GetPlatformIDs = cl_int (*)(cl_uint, cl_platform_id*, cl_uint*);
using GetPlatformInfo = cl_int (*)(cl_platform_id, cl_uint, size_t, void*, size_t*);
using GetDeviceIDs = cl_int (*)(cl_platform_id, cl_bitfield, cl_uint, cl_device_id*, cl_uint*);
using GetDeviceInfo = cl_int (*)(cl_device_id, cl_uint, size_t, void*, size_t*);

struct Functions {
    GetPlatformIDs platform_ids = nullptr;
    GetPlatformInfo platform_info = nullptr;
    GetDeviceIDs device_ids = nullptr;
    GetDeviceInfo device_info = nullptr;
};

template <typename Handle, typename Info>
std::string info_string(Info info, Handle handle, cl_uint name) {
    size_t size = 0;
    if (info(handle, name, 0, nullptr, &size) != kSuccess || size == 0 || size > kMaxInfoBytes) {
        return {};
    }
    std::string text(size, '\0');
    if (info(handle, name, size, text.data(), nullptr) != kSuccess) {
        return {};
    }
    return bounded_string(text.data(), text.size());
}

template <typename Value>
Value device_value(GetDeviceInfo info, cl_device_id device, cl_uint name) {
    Value value{};
    if (info(device, name, sizeof(value), &value, nullptr) != kSuccess) {
        return Value{};
    }
    return value;
}

std::string device_type_name(cl_bitfield type) {
    if ((type & kDeviceTypeGpu) != 0) {
        return "gpu";
    }
    if ((type & kDeviceTypeAccelerator) != 0) {
        return "accelerator";
    }
    if ((type & kDeviceTypeCpu) != 0) {
        return "cpu";
    }
    if ((type & kDeviceTypeCustom) != 0) {
        return "custom";
    }
    return "other";
}

std::vector<std::string> split_words(const std::string& text) {
    std::vector<std::string> words;
    std::istringstream stream(text);
    std::string word;
    while (stream >> word) {
        words.push_back(word);
    }
    return words;
}

OpenCLDevice read_device(const Functions& f, cl_device_id handle) {
    OpenCLDevice device;
    device.name = info_string(f.device_info, handle, kDeviceName);
    device.vendor = info_string(f.device_info, handle, kDeviceVendor);
    device.vendor_id = device_value<cl_uint>(f.device_info, handle, kDeviceVendorId);
    device.version = info_string(f.device_info, handle, kDeviceVersion);
    device.driver_version = info_string(f.device_info, handle, kDriverVersion);
    device.opencl_c_version = info_string(f.device_info, handle, kDeviceOpenclCVersion);
    device.device_type
        = device_type_name(device_value<cl_bitfield>(f.device_info, handle, kDeviceType));
    device.global_memory_bytes
        = device_value<cl_ulong>(f.device_info, handle, kDeviceGlobalMemSize);
    device.max_allocation_bytes
        = device_value<cl_ulong>(f.device_info, handle, kDeviceMaxMemAllocSize);
    device.compute_units = device_value<cl_uint>(f.device_info, handle, kDeviceMaxComputeUnits);
    device.max_clock_mhz = device_value<cl_uint>(f.device_info, handle, kDeviceMaxClockFrequency);
    device.host_unified_memory
        = device_value<cl_uint>(f.device_info, handle, kDeviceHostUnifiedMemory) != 0;
    device.extensions = split_words(info_string(f.device_info, handle, kDeviceExtensions));
    return device;
}

OpenCLPlatform read_platform(const Functions& f, cl_platform_id handle) {
    OpenCLPlatform platform;
    platform.name = info_string(f.platform_info, handle, kPlatformName);
    platform.vendor = info_string(f.platform_info, handle, kPlatformVendor);
    platform.version = info_string(f.platform_info, handle, kPlatformVersion);
    cl_uint count = 0;
    cl_int result = f.device_ids(handle, kDeviceTypeAll, 0, nullptr, &count);
    if (result == kDeviceNotFound) {
        return platform;  // a platform with no devices is an answer, not an error
    }
    if (result != kSuccess) {
        platform.error = "clGetDeviceIDs failed with error " + std::to_string(result);
        return platform;
    }
    count = std::min(count, kMaxEntries);
    std::vector<cl_device_id> devices(count);
    result = f.device_ids(handle, kDeviceTypeAll, count, devices.data(), &count);
    if (result != kSuccess) {
        platform.error = "clGetDeviceIDs failed with error " + std::to_string(result);
        return platform;
    }
    devices.resize(std::min<size_t>(count, devices.size()));
    for (cl_device_id device : devices) {
        platform.devices.push_back(read_device(f, device));
    }
    return platform;
}

}  // namespace

std::vector<std::string> default_opencl_libraries() {
#if defined(__ANDROID__)
    // Vendor paths are only visible to apps that declare <uses-native-library> (Android 12+).
    return {"libOpenCL.so",
            "/vendor/lib64/libOpenCL.so",
            "/system/vendor/lib64/libOpenCL.so",
            "/system/lib64/libOpenCL.so",
            "/vendor/lib64/egl/libGLES_mali.so",
            "/system/vendor/lib64/egl/libGLES_mali.so",
            "libPVROCL.so"};
#elif defined(__APPLE__)
    return {"/System/Library/Frameworks/OpenCL.framework/OpenCL"};
#else
    // The ICD loader; the unversioned name only comes with the -dev package.
    return {"libOpenCL.so.1", "libOpenCL.so"};
#endif
}

OpenCLReport probe_opencl(const std::vector<std::string>& libraries) {
    OpenCLReport report;
    SharedLibrary library = SharedLibrary::open_first(libraries);
    if (!library.is_open()) {
        report.status = ApiStatus::NotInstalled;
        report.detail = "no OpenCL library: " + library.errors_text();
        return report;
    }
    report.library = library.name();
    Functions f;
    f.platform_ids = library.function<GetPlatformIDs>("clGetPlatformIDs");
    f.platform_info = library.function<GetPlatformInfo>("clGetPlatformInfo");
    f.device_ids = library.function<GetDeviceIDs>("clGetDeviceIDs");
    f.device_info = library.function<GetDeviceInfo>("clGetDeviceInfo");
    if (f.platform_ids == nullptr || f.platform_info == nullptr || f.device_ids == nullptr
        || f.device_info == nullptr) {
        report.status = ApiStatus::Error;
        report.detail = report.library + " does not export the OpenCL platform and device queries";
        return report;
    }
    cl_uint count = 0;
    cl_int result = f.platform_ids(0, nullptr, &count);
    if (result == kPlatformNotFoundKhr || (result == kSuccess && count == 0)) {
        report.status = ApiStatus::NoDriver;
        report.detail = "the OpenCL loader found no platform (ICD)";
        return report;
    }
    if (result != kSuccess) {
        report.status = ApiStatus::Error;
        report.detail = "clGetPlatformIDs failed with error " + std::to_string(result);
        return report;
    }
    count = std::min(count, kMaxEntries);
    std::vector<cl_platform_id> platforms(count);
    result = f.platform_ids(count, platforms.data(), &count);
    if (result != kSuccess) {
        report.status = ApiStatus::Error;
        report.detail = "clGetPlatformIDs failed with error " + std::to_string(result);
        return report;
    }
    platforms.resize(std::min<size_t>(count, platforms.size()));
    report.status = ApiStatus::Ok;
    for (cl_platform_id platform : platforms) {
        report.platforms.push_back(read_platform(f, platform));
    }
    return report;
}

}  // namespace iris::probe
