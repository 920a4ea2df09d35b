#include "probe/vulkan.hpp"

#include <algorithm>
#include <array>
#include <string_view>

#include "probe/shared_library.hpp"
#include "probe/vulkan_abi.hpp"

namespace iris::probe {
namespace {

constexpr uint32_t kNvidiaVendorId = 0x10DE;

// Device extensions whose presence changes what llama.cpp's Vulkan backend can do.
constexpr std::array<std::string_view, 8> kNotableExtensions = {
    "VK_KHR_16bit_storage",
    "VK_KHR_shader_float16_int8",
    "VK_KHR_cooperative_matrix",
    "VK_NV_cooperative_matrix2",
    "VK_KHR_shader_integer_dot_product",
    "VK_EXT_subgroup_size_control",
    "VK_KHR_shader_bfloat16",
    "VK_KHR_maintenance4",
};

std::string result_name(vk::Result result) {
    switch (result) {
    case -1:
        return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case -2:
        return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case -3:
        return "VK_ERROR_INITIALIZATION_FAILED";
    case -4:
        return "VK_ERROR_DEVICE_LOST";
    case -6:
        return "VK_ERROR_LAYER_NOT_PRESENT";
    case -7:
        return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case -9:
        return "VK_ERROR_INCOMPATIBLE_DRIVER";
    default:
        return "VkResult " + std::to_string(result);
    }
}

std::string device_type_name(int32_t type) {
    switch (type) {
    case 1:
        return "integrated";
    case 2:
        return "discrete";
    case 3:
        return "virtual";
    case 4:
        return "cpu";
    default:
        return "other";
    }
}

/// Calls a Vulkan two-call enumeration (count, then fill) until the list stops growing.
template <typename Item, typename Call>
vk::Result enumerate(std::vector<Item>& items, Call call) {
    for (int attempt = 0; attempt < 4; ++attempt) {
        uint32_t count = 0;
        vk::Result result = call(&count, static_cast<Item*>(nullptr));
        if (result != vk::kSuccess && result != vk::kIncomplete) {
            return result;
        }
        items.resize(count);
        if (count == 0) {
            return vk::kSuccess;
        }
        result = call(&count, items.data());
        if (result == vk::kSuccess) {
            items.resize(count);
            return result;
        }
        if (result != vk::kIncomplete) {
            return result;
        }
    }
    return vk::kIncomplete;
}

struct InstanceFunctions {
    vk::DestroyInstance destroy = nullptr;
    vk::EnumeratePhysicalDevices enumerate_devices = nullptr;
    vk::GetPhysicalDeviceProperties properties = nullptr;
    vk::GetPhysicalDeviceProperties2 properties2 = nullptr;
    vk::GetPhysicalDeviceFeatures2 features2 = nullptr;
    vk::GetPhysicalDeviceMemoryProperties memory_properties = nullptr;
    vk::EnumerateDeviceExtensionProperties device_extensions = nullptr;
};

InstanceFunctions load_instance_functions(vk::GetInstanceProcAddr get, vk::Instance instance) {
    InstanceFunctions f;
    f.destroy = reinterpret_cast<vk::DestroyInstance>(get(instance, "vkDestroyInstance"));
    f.enumerate_devices = reinterpret_cast<vk::EnumeratePhysicalDevices>(
        get(instance, "vkEnumeratePhysicalDevices"));
    f.properties = reinterpret_cast<vk::GetPhysicalDeviceProperties>(
        get(instance, "vkGetPhysicalDeviceProperties"));
    // Core in Vulkan 1.1; a 1.0 instance may still offer them under the KHR extension name.
    const auto core_or_khr = [&](const std::string& name) {
        vk::VoidFunction function = get(instance, name.c_str());
        return function != nullptr ? function : get(instance, (name + "KHR").c_str());
    };
    f.properties2 = reinterpret_cast<vk::GetPhysicalDeviceProperties2>(
        core_or_khr("vkGetPhysicalDeviceProperties2"));
    f.features2 = reinterpret_cast<vk::GetPhysicalDeviceFeatures2>(
        core_or_khr("vkGetPhysicalDeviceFeatures2"));
    f.memory_properties = reinterpret_cast<vk::GetPhysicalDeviceMemoryProperties>(
        get(instance, "vkGetPhysicalDeviceMemoryProperties"));
    f.device_extensions = reinterpret_cast<vk::EnumerateDeviceExtensionProperties>(
        get(instance, "vkEnumerateDeviceExtensionProperties"));
    return f;
}

VulkanDevice read_device(const InstanceFunctions& f, vk::PhysicalDevice handle,
                         uint32_t instance_api) {
    VulkanDevice device;
    vk::PhysicalDeviceProperties properties{};
    f.properties(handle, &properties);
    device.name = bounded_string(properties.deviceName, vk::kMaxPhysicalDeviceNameSize);
    device.vendor_id = properties.vendorID;
    device.device_id = properties.deviceID;
    device.device_type = device_type_name(properties.deviceType);
    device.api_version = format_api_version(properties.apiVersion);
    device.driver_version_raw = properties.driverVersion;
    device.driver_version = format_driver_version(properties.vendorID, properties.driverVersion);

    // Structures promoted to core in version X may be chained only when both the device and
    // the instance speak X.
    const uint32_t usable_api = std::min(properties.apiVersion & ~0xFFFU, instance_api);
    const bool has_1_1 = usable_api >= vk::make_api_version(1, 1, 0);
    const bool has_1_2 = usable_api >= vk::make_api_version(1, 2, 0);
    if (has_1_1 && f.properties2 != nullptr) {
        vk::PhysicalDeviceProperties2 properties2;
        vk::PhysicalDeviceSubgroupProperties subgroup;
        vk::PhysicalDeviceDriverProperties driver;
        properties2.pNext = &subgroup;
        if (has_1_2) {
            subgroup.pNext = &driver;
        }
        f.properties2(handle, &properties2);
        device.subgroup_size = subgroup.subgroupSize;
        if (has_1_2) {
            device.driver_name = bounded_string(driver.driverName, vk::kMaxDriverNameSize);
            device.driver_info = bounded_string(driver.driverInfo, vk::kMaxDriverInfoSize);
        }
    }
    if (has_1_1 && f.features2 != nullptr) {
        vk::PhysicalDeviceFeatures2 features2;
        vk::PhysicalDevice16BitStorageFeatures storage16;
        vk::PhysicalDeviceShaderFloat16Int8Features float16;
        features2.pNext = &storage16;
        if (has_1_2) {
            storage16.pNext = &float16;
        }
        f.features2(handle, &features2);
        device.storage_buffer_16bit = storage16.storageBuffer16BitAccess != 0 ? 1 : 0;
        if (has_1_2) {
            device.shader_float16 = float16.shaderFloat16 != 0 ? 1 : 0;
        }
    }
    if (f.memory_properties != nullptr) {
        vk::PhysicalDeviceMemoryProperties memory{};
        f.memory_properties(handle, &memory);
        const uint32_t heaps = std::min(memory.memoryHeapCount, vk::kMaxMemoryHeaps);
        for (uint32_t i = 0; i < heaps; ++i) {
            device.memory_heaps.push_back(
                {memory.memoryHeaps[i].size,
                 (memory.memoryHeaps[i].flags & vk::kMemoryHeapDeviceLocal) != 0});
        }
    }
    if (f.device_extensions != nullptr) {
        std::vector<vk::ExtensionProperties> extensions;
        const vk::Result result = enumerate(extensions, [&](uint32_t* count, auto* items) {
            return f.device_extensions(handle, nullptr, count, items);
        });
        if (result == vk::kSuccess) {
            for (const vk::ExtensionProperties& extension : extensions) {
                const std::string name
                    = bounded_string(extension.extensionName, vk::kMaxExtensionNameSize);
                if (std::find(kNotableExtensions.begin(), kNotableExtensions.end(), name)
                    != kNotableExtensions.end()) {
                    device.extensions.push_back(name);
                }
            }
            std::sort(device.extensions.begin(), device.extensions.end());
        }
    }
    return device;
}

}  // namespace

std::vector<std::string> default_vulkan_libraries() {
#if defined(__ANDROID__)
    return {"libvulkan.so"};
#elif defined(__APPLE__)
    // MoltenVK through the loader, as the LunarG SDK and Homebrew install it.
    return {"libvulkan.1.dylib", "libvulkan.dylib", "/usr/local/lib/libvulkan.1.dylib",
            "/opt/homebrew/lib/libvulkan.1.dylib"};
#else
    // Debian's libvulkan1 ships only the versioned name; the bare one comes with -dev.
    return {"libvulkan.so.1", "libvulkan.so"};
#endif
}

std::string format_api_version(uint32_t version) {
    return std::to_string((version >> 22U) & 0x7FU) + "."
           + std::to_string((version >> 12U) & 0x3FFU) + "." + std::to_string(version & 0xFFFU);
}

std::string format_driver_version(uint32_t vendor_id, uint32_t version) {
    if (vendor_id == kNvidiaVendorId) {
        return std::to_string((version >> 22U) & 0x3FFU) + "."
               + std::to_string((version >> 14U) & 0xFFU) + "."
               + std::to_string((version >> 6U) & 0xFFU) + "." + std::to_string(version & 0x3FU);
    }
    return std::to_string(version >> 22U) + "." + std::to_string((version >> 12U) & 0x3FFU) + "."
           + std::to_string(version & 0xFFFU);
}

VulkanReport probe_vulkan(const std::vector<std::string>& libraries) {
    VulkanReport report;
    SharedLibrary library = SharedLibrary::open_first(libraries);
    if (!library.is_open()) {
        report.status = ApiStatus::NotInstalled;
        report.detail = "no Vulkan loader: " + library.errors_text();
        return report;
    }
    report.library = library.name();
    const auto get = library.function<vk::GetInstanceProcAddr>("vkGetInstanceProcAddr");
    if (get == nullptr) {
        report.status = ApiStatus::Error;
        report.detail = report.library + " does not export vkGetInstanceProcAddr";
        return report;
    }

    // A 1.0 loader has no vkEnumerateInstanceVersion.
    uint32_t instance_version = vk::make_api_version(1, 0, 0);
    if (const auto enumerate_version = reinterpret_cast<vk::EnumerateInstanceVersion>(
            get(nullptr, "vkEnumerateInstanceVersion"));
        enumerate_version != nullptr) {
        enumerate_version(&instance_version);
    }
    report.instance_version = format_api_version(instance_version);

    // Portability drivers (MoltenVK) are only listed when the instance asks for them.
    bool portability = false;
    if (const auto instance_extensions = reinterpret_cast<vk::EnumerateInstanceExtensionProperties>(
            get(nullptr, "vkEnumerateInstanceExtensionProperties"));
        instance_extensions != nullptr) {
        std::vector<vk::ExtensionProperties> extensions;
        enumerate(extensions, [&](uint32_t* count, auto* items) {
            return instance_extensions(nullptr, count, items);
        });
        for (const vk::ExtensionProperties& extension : extensions) {
            if (bounded_string(extension.extensionName, vk::kMaxExtensionNameSize)
                == "VK_KHR_portability_enumeration") {
                portability = true;
            }
        }
    }

    const auto create = reinterpret_cast<vk::CreateInstance>(get(nullptr, "vkCreateInstance"));
    if (create == nullptr) {
        report.status = ApiStatus::Error;
        report.detail = report.library + " has no vkCreateInstance";
        return report;
    }
    // A 1.0 loader refuses any other apiVersion; later ones accept the newest we use.
    const uint32_t requested_api
        = instance_version >= vk::make_api_version(1, 1, 0)
              ? std::min(instance_version & ~0xFFFU, vk::make_api_version(1, 3, 0))
              : vk::make_api_version(1, 0, 0);
    vk::ApplicationInfo application;
    application.pApplicationName = "iris-models device probe";
    application.pEngineName = "iris-models";
    application.apiVersion = requested_api;
    const char* portability_extension = "VK_KHR_portability_enumeration";
    vk::InstanceCreateInfo create_info;
    create_info.pApplicationInfo = &application;
    if (portability) {
        create_info.flags = vk::kInstanceCreateEnumeratePortability;
        create_info.enabledExtensionCount = 1;
        create_info.ppEnabledExtensionNames = &portability_extension;
    }
    vk::Instance instance = nullptr;
    const vk::Result created = create(&create_info, nullptr, &instance);
    if (created == vk::kErrorIncompatibleDriver) {
        report.status = ApiStatus::NoDriver;
        report.detail = "the Vulkan loader found no driver (ICD) that can create an instance";
        return report;
    }
    if (created != vk::kSuccess || instance == nullptr) {
        report.status = ApiStatus::Error;
        report.detail = "vkCreateInstance failed: " + result_name(created);
        return report;
    }

    const InstanceFunctions functions = load_instance_functions(get, instance);
    if (functions.destroy == nullptr || functions.enumerate_devices == nullptr
        || functions.properties == nullptr) {
        report.status = ApiStatus::Error;
        report.detail = "the Vulkan loader lacks core instance functions";
        if (functions.destroy != nullptr) {
            functions.destroy(instance, nullptr);
        }
        return report;
    }
    std::vector<vk::PhysicalDevice> handles;
    const vk::Result listed = enumerate(handles, [&](uint32_t* count, auto* items) {
        return functions.enumerate_devices(instance, count, items);
    });
    if (listed != vk::kSuccess) {
        report.status = ApiStatus::Error;
        report.detail = "vkEnumeratePhysicalDevices failed: " + result_name(listed);
    } else if (handles.empty()) {
        report.status = ApiStatus::NoDriver;
        report.detail = "the Vulkan loader created an instance but no driver offers a device";
    } else {
        report.status = ApiStatus::Ok;
        for (vk::PhysicalDevice handle : handles) {
            report.devices.push_back(read_device(functions, handle, requested_api));
        }
    }
    functions.destroy(instance, nullptr);
    return report;
}

}  // namespace iris::probe
