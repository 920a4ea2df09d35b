// The part of the Vulkan C ABI the probe uses, declared by hand so that building the core
// needs no Vulkan headers. Field order and types follow vulkan_core.h; the unit test checks
// sizes and offsets against the real header wherever it is installed.
#pragma once

#include <cstdint>

namespace iris::probe::vk {

using Bool32 = uint32_t;
using DeviceSize = uint64_t;
using Result = int32_t;
using Flags = uint32_t;
struct InstanceHandle;
using Instance = InstanceHandle*;
struct PhysicalDeviceHandle;
using PhysicalDevice = PhysicalDeviceHandle*;

inline constexpr Result kSuccess = 0;
inline constexpr Result kIncomplete = 5;
inline constexpr Result kErrorIncompatibleDriver = -9;
inline constexpr Result kErrorExtensionNotPresent = -7;

inline constexpr int32_t kStructureApplicationInfo = 0;
inline constexpr int32_t kStructureInstanceCreateInfo = 1;
inline constexpr int32_t kStructurePhysicalDeviceFeatures2 = 1000059000;
inline constexpr int32_t kStructurePhysicalDeviceProperties2 = 1000059001;
inline constexpr int32_t kStructure16BitStorageFeatures = 1000083000;
inline constexpr int32_t kStructureShaderFloat16Int8Features = 1000082000;
inline constexpr int32_t kStructureSubgroupProperties = 1000094000;
inline constexpr int32_t kStructureDriverProperties = 1000196000;
inline constexpr Flags kInstanceCreateEnumeratePortability = 0x1;
inline constexpr Flags kMemoryHeapDeviceLocal = 0x1;

inline constexpr uint32_t kMaxPhysicalDeviceNameSize = 256;
inline constexpr uint32_t kMaxExtensionNameSize = 256;
inline constexpr uint32_t kMaxDriverNameSize = 256;
inline constexpr uint32_t kMaxDriverInfoSize = 256;
inline constexpr uint32_t kMaxMemoryTypes = 32;
inline constexpr uint32_t kMaxMemoryHeaps = 16;

constexpr uint32_t make_api_version(uint32_t major, uint32_t minor, uint32_t patch) {
    return (major << 22U) | (minor << 12U) | patch;
}

struct ApplicationInfo {
    int32_t sType = kStructureApplicationInfo;
    const void* pNext = nullptr;
    const char* pApplicationName = nullptr;
    uint32_t applicationVersion = 0;
    const char* pEngineName = nullptr;
    uint32_t engineVersion = 0;
    uint32_t apiVersion = 0;
};

struct InstanceCreateInfo {
    int32_t sType = kStructureInstanceCreateInfo;
    const void* pNext = nullptr;
    Flags flags = 0;
    const ApplicationInfo* pApplicationInfo = nullptr;
    uint32_t enabledLayerCount = 0;
    const char* const* ppEnabledLayerNames = nullptr;
    uint32_t enabledExtensionCount = 0;
    const char* const* ppEnabledExtensionNames = nullptr;
};

struct ExtensionProperties {
    char extensionName[kMaxExtensionNameSize];
    uint32_t specVersion;
};

/// VkPhysicalDeviceProperties up to the device name, then room for the limits and sparse
/// properties, which the probe does not read (they are 528 bytes on LP64; the spare room
/// only has to be at least that).
struct PhysicalDeviceProperties {
    uint32_t apiVersion;
    uint32_t driverVersion;
    uint32_t vendorID;
    uint32_t deviceID;
    int32_t deviceType;
    char deviceName[kMaxPhysicalDeviceNameSize];
    uint8_t pipelineCacheUUID[16];
    alignas(8) uint8_t limits_and_sparse_properties[1024];
};

struct PhysicalDeviceProperties2 {
    int32_t sType = kStructurePhysicalDeviceProperties2;
    void* pNext = nullptr;
    PhysicalDeviceProperties properties{};
};

struct PhysicalDeviceSubgroupProperties {
    int32_t sType = kStructureSubgroupProperties;
    void* pNext = nullptr;
    uint32_t subgroupSize = 0;
    Flags supportedStages = 0;
    Flags supportedOperations = 0;
    Bool32 quadOperationsInAllStages = 0;
};

struct ConformanceVersion {
    uint8_t major, minor, subminor, patch;
};

struct PhysicalDeviceDriverProperties {
    int32_t sType = kStructureDriverProperties;
    void* pNext = nullptr;
    int32_t driverID = 0;
    char driverName[kMaxDriverNameSize] = {};
    char driverInfo[kMaxDriverInfoSize] = {};
    ConformanceVersion conformanceVersion{};
};

/// VkPhysicalDeviceFeatures: 55 VkBool32 in 1.0 to 1.3; none of them is read by name.
struct PhysicalDeviceFeatures {
    Bool32 flags[55];
};

struct PhysicalDeviceFeatures2 {
    int32_t sType = kStructurePhysicalDeviceFeatures2;
    void* pNext = nullptr;
    PhysicalDeviceFeatures features{};
};

struct PhysicalDevice16BitStorageFeatures {
    int32_t sType = kStructure16BitStorageFeatures;
    void* pNext = nullptr;
    Bool32 storageBuffer16BitAccess = 0;
    Bool32 uniformAndStorageBuffer16BitAccess = 0;
    Bool32 storagePushConstant16 = 0;
    Bool32 storageInputOutput16 = 0;
};

struct PhysicalDeviceShaderFloat16Int8Features {
    int32_t sType = kStructureShaderFloat16Int8Features;
    void* pNext = nullptr;
    Bool32 shaderFloat16 = 0;
    Bool32 shaderInt8 = 0;
};

struct MemoryType {
    Flags propertyFlags;
    uint32_t heapIndex;
};

struct MemoryHeap {
    DeviceSize size;
    Flags flags;
};

struct PhysicalDeviceMemoryProperties {
    uint32_t memoryTypeCount;
    MemoryType memoryTypes[kMaxMemoryTypes];
    uint32_t memoryHeapCount;
    MemoryHeap memoryHeaps[kMaxMemoryHeaps];
};

// 32-bit ARM Android builds call Vulkan with the hard-float convention (VKAPI_ATTR).
#if defined(__ANDROID__) && defined(__arm__)
#define IRIS_VKAPI __attribute__((pcs("aapcs-vfp")))
#else
#define IRIS_VKAPI
#endif

using VoidFunction = void(IRIS_VKAPI*)();
using GetInstanceProcAddr = VoidFunction(IRIS_VKAPI*)(Instance, const char*);
using EnumerateInstanceVersion = Result(IRIS_VKAPI*)(uint32_t*);
using EnumerateInstanceExtensionProperties
    = Result(IRIS_VKAPI*)(const char*, uint32_t*, ExtensionProperties*);
using CreateInstance = Result(IRIS_VKAPI*)(const InstanceCreateInfo*, const void*, Instance*);
using DestroyInstance = void(IRIS_VKAPI*)(Instance, const void*);
using EnumeratePhysicalDevices = Result(IRIS_VKAPI*)(Instance, uint32_t*, PhysicalDevice*);
using GetPhysicalDeviceProperties = void(IRIS_VKAPI*)(PhysicalDevice, PhysicalDeviceProperties*);
using GetPhysicalDeviceProperties2 = void(IRIS_VKAPI*)(PhysicalDevice, PhysicalDeviceProperties2*);
using GetPhysicalDeviceFeatures2 = void(IRIS_VKAPI*)(PhysicalDevice, PhysicalDeviceFeatures2*);
using GetPhysicalDeviceMemoryProperties
    = void(IRIS_VKAPI*)(PhysicalDevice, PhysicalDeviceMemoryProperties*);
using EnumerateDeviceExtensionProperties
    = Result(IRIS_VKAPI*)(PhysicalDevice, const char*, uint32_t*, ExtensionProperties*);

}  // namespace iris::probe::vk
