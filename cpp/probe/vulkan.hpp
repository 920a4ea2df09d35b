// Vulkan compute devices, found through the loader opened at run time: the instance version,
// and per physical device what llama.cpp's Vulkan backend needs to know (API version, type,
// device-local memory, subgroup size, 16-bit storage).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "probe/api_status.hpp"

namespace iris::probe {

struct VulkanMemoryHeap {
    uint64_t size_bytes = 0;
    bool device_local = false;
};

struct VulkanDevice {
    std::string name;
    uint32_t vendor_id = 0;
    uint32_t device_id = 0;
    std::string device_type;     // "integrated", "discrete", "virtual", "cpu" or "other"
    std::string api_version;     // "1.3.230"
    std::string driver_version;  // decoded the vendor's way, as vulkaninfo does
    uint32_t driver_version_raw = 0;
    std::string driver_name;  // from VkPhysicalDeviceDriverProperties (Vulkan 1.2+), else ""
    std::string driver_info;
    std::vector<VulkanMemoryHeap> memory_heaps;
    uint32_t subgroup_size = 0;           // 0 when the device is Vulkan 1.0
    int storage_buffer_16bit = -1;        // -1 unknown (Vulkan 1.0), 0 no, 1 yes
    int shader_float16 = -1;              // -1 unknown (before Vulkan 1.2), 0 no, 1 yes
    std::vector<std::string> extensions;  // the device extensions llama.cpp looks for
};

struct VulkanReport {
    ApiStatus status = ApiStatus::NotInstalled;
    std::string detail;   // why, when status is not Ok
    std::string library;  // the loader that was opened
    std::string instance_version;
    std::vector<VulkanDevice> devices;
};

/// The loader names to try on this platform, in order.
std::vector<std::string> default_vulkan_libraries();

/// Opens the first loader in `libraries` that loads, creates an instance and reads every
/// physical device. Never throws for a missing or broken runtime: that is in the report.
VulkanReport probe_vulkan(const std::vector<std::string>& libraries);

/// "major.minor.patch" of a VK_API_VERSION value.
std::string format_api_version(uint32_t version);

/// A driver version decoded as vulkaninfo does: NVIDIA packs 10.8.8.6 bits, everyone else
/// uses the API version layout.
std::string format_driver_version(uint32_t vendor_id, uint32_t version);

}  // namespace iris::probe
