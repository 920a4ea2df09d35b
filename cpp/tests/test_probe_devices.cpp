// Unit tests for the device probes beyond the CPU: the hand-declared Vulkan ABI against
// Khronos' header (where installed), version decoding, missing runtimes, /proc/cpuinfo
// parsing, soc0 reading and the bandwidth measurement's argument checks.
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "check.hpp"
#include "probe/bandwidth.hpp"
#include "probe/cuda.hpp"
#include "probe/opencl.hpp"
#include "probe/shared_library.hpp"
#include "probe/soc.hpp"
#include "probe/vulkan.hpp"
#include "probe/vulkan_abi.hpp"

#if __has_include(<vulkan/vulkan_core.h>)
#include <vulkan/vulkan_core.h>
#define IRIS_HAVE_VULKAN_HEADERS 1
#endif

namespace fs = std::filesystem;
namespace vk = iris::probe::vk;

#ifdef IRIS_HAVE_VULKAN_HEADERS
// The probe's structures must lay out exactly as the driver writes them. Where our struct
// leaves room instead of naming fields, it must be at least as large.
#define SAME_LAYOUT(ours, theirs)                         \
    static_assert(sizeof(ours) == sizeof(theirs), #ours); \
    static_assert(alignof(ours) == alignof(theirs), #ours)
SAME_LAYOUT(vk::ApplicationInfo, VkApplicationInfo);
SAME_LAYOUT(vk::InstanceCreateInfo, VkInstanceCreateInfo);
SAME_LAYOUT(vk::ExtensionProperties, VkExtensionProperties);
SAME_LAYOUT(vk::PhysicalDeviceSubgroupProperties, VkPhysicalDeviceSubgroupProperties);
SAME_LAYOUT(vk::PhysicalDeviceDriverProperties, VkPhysicalDeviceDriverProperties);
SAME_LAYOUT(vk::PhysicalDeviceFeatures, VkPhysicalDeviceFeatures);
SAME_LAYOUT(vk::PhysicalDeviceFeatures2, VkPhysicalDeviceFeatures2);
SAME_LAYOUT(vk::PhysicalDevice16BitStorageFeatures, VkPhysicalDevice16BitStorageFeatures);
SAME_LAYOUT(vk::PhysicalDeviceShaderFloat16Int8Features, VkPhysicalDeviceShaderFloat16Int8Features);
SAME_LAYOUT(vk::PhysicalDeviceMemoryProperties, VkPhysicalDeviceMemoryProperties);
static_assert(sizeof(vk::PhysicalDeviceProperties) >= sizeof(VkPhysicalDeviceProperties));
static_assert(offsetof(vk::PhysicalDeviceProperties, deviceName)
              == offsetof(VkPhysicalDeviceProperties, deviceName));
static_assert(offsetof(vk::PhysicalDeviceProperties, limits_and_sparse_properties)
              == offsetof(VkPhysicalDeviceProperties, limits));
static_assert(offsetof(vk::PhysicalDeviceProperties2, properties)
              == offsetof(VkPhysicalDeviceProperties2, properties));
static_assert(offsetof(vk::PhysicalDeviceMemoryProperties, memoryHeaps)
              == offsetof(VkPhysicalDeviceMemoryProperties, memoryHeaps));
static_assert(vk::kStructurePhysicalDeviceProperties2
              == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2);
static_assert(vk::kStructurePhysicalDeviceFeatures2
              == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
static_assert(vk::kStructure16BitStorageFeatures
              == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES);
static_assert(vk::kStructureShaderFloat16Int8Features
              == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES);
static_assert(vk::kStructureSubgroupProperties
              == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES);
static_assert(vk::kStructureDriverProperties
              == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES);
static_assert(vk::make_api_version(1, 3, 0) == VK_API_VERSION_1_3);
#endif

namespace {

std::string temporary_path(const std::string& stem) {
    return (fs::temp_directory_path() / (stem + "-" + std::to_string(::getpid()))).string();
}

}  // namespace

TEST(vulkan_abi_checked_against_khronos_header_when_installed) {
#ifdef IRIS_HAVE_VULKAN_HEADERS
    CHECK(true);  // the static_asserts above did the work at compile time
#else
    std::printf("note: vulkan/vulkan_core.h not installed; ABI layout not cross-checked\n");
#endif
}

TEST(api_versions_decode_like_vulkaninfo) {
    CHECK(iris::probe::format_api_version(vk::make_api_version(1, 3, 230)) == "1.3.230");
    CHECK(iris::probe::format_driver_version(0x10005, 1) == "0.0.1");
    // NVIDIA packs 10.8.8.6 bits: 535.113.1.0
    const uint32_t nvidia = (535U << 22U) | (113U << 14U) | (1U << 6U);
    CHECK(iris::probe::format_driver_version(0x10DE, nvidia) == "535.113.1.0");
}

TEST(missing_libraries_are_reported_not_installed_with_reasons) {
    const std::vector<std::string> missing = {temporary_path("no-such-library") + ".so"};
    const auto vulkan = iris::probe::probe_vulkan(missing);
    CHECK(vulkan.status == iris::probe::ApiStatus::NotInstalled);
    CHECK(vulkan.detail.find("no-such-library") != std::string::npos);
    CHECK(vulkan.devices.empty());
    const auto opencl = iris::probe::probe_opencl(missing);
    CHECK(opencl.status == iris::probe::ApiStatus::NotInstalled);
    const auto cuda = iris::probe::probe_cuda(missing);
    CHECK(cuda.status == iris::probe::ApiStatus::NotInstalled);
    CHECK(iris::probe::probe_cuda({}).status == iris::probe::ApiStatus::NotInstalled);
}

TEST(a_library_without_the_entry_points_is_an_error_not_a_crash) {
    // libc loads everywhere and exports none of the GPU entry points.
#if defined(__APPLE__)
    const std::vector<std::string> libc = {"/usr/lib/libSystem.B.dylib"};
#else
    const std::vector<std::string> libc = {"libc.so.6"};
#endif
    CHECK(iris::probe::probe_vulkan(libc).status == iris::probe::ApiStatus::Error);
    CHECK(iris::probe::probe_opencl(libc).status == iris::probe::ApiStatus::Error);
    CHECK(iris::probe::probe_cuda(libc).status == iris::probe::ApiStatus::Error);
}

TEST(shared_library_tries_candidates_in_order) {
    auto library = iris::probe::SharedLibrary::open_first({"libdoes-not-exist.so.9", "libc.so.6"});
#if !defined(__APPLE__)
    CHECK(library.is_open());
    CHECK(library.name() == "libc.so.6");
    CHECK(library.errors().size() == 1);
    CHECK(library.symbol("malloc") != nullptr);
    CHECK(library.symbol("no_such_symbol_anywhere") == nullptr);
#endif
    auto moved = std::move(library);
    CHECK(!library.is_open());  // NOLINT(bugprone-use-after-move): testing the moved-from state
}

TEST(cpuinfo_of_an_arm_phone_yields_hardware_parts_and_features) {
    const std::string text
        = "processor\t: 0\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd evtstrm aes crc32 asimddp\n"
          "CPU implementer\t: 0x51\nCPU part\t: 0x805\n\n"
          "processor\t: 1\nFeatures\t: fp asimd\nCPU implementer\t: 0x51\nCPU part\t: 0x804\n\n"
          "Hardware\t: Qualcomm Technologies, Inc SM8150\n";
    const auto info = iris::probe::parse_cpuinfo(text);
    CHECK(info.processors == 2);
    CHECK(info.hardware == "Qualcomm Technologies, Inc SM8150");
    CHECK((info.cpu_parts == std::vector<std::string>{"0x805", "0x804"}));
    CHECK((info.implementers == std::vector<std::string>{"0x51"}));
    CHECK(info.features.size() == 6);  // the first Features line only
}

TEST(cpuinfo_of_x86_yields_model_name_and_flags) {
    const auto info = iris::probe::parse_cpuinfo(
        "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx2\n");
    CHECK(info.model_name == "AMD EPYC 7B13");
    CHECK((info.features == std::vector<std::string>{"fpu", "sse", "avx2"}));
    CHECK(info.hardware.empty());
    CHECK(iris::probe::parse_cpuinfo("").processors == 0);
    CHECK(iris::probe::parse_cpuinfo("no colon here\n\0\xff:\n").processors == 0);
}

TEST(soc_files_are_read_trimmed_and_missing_ones_left_empty) {
    const fs::path root = temporary_path("iris-soc0");
    fs::create_directories(root);
    std::ofstream(root / "machine") << "SM8550\n";
    std::ofstream(root / "family") << "Snapdragon\n";
    const auto soc = iris::probe::read_soc_files(root.string());
    CHECK(soc.machine == "SM8550");
    CHECK(soc.family == "Snapdragon");
    CHECK(soc.soc_id.empty());
    fs::remove_all(root);
    CHECK(iris::probe::read_soc_files(root.string()).machine.empty());
}

TEST(bandwidth_measurement_checks_arguments_and_measures) {
    bool threw = false;
    try {
        (void)iris::probe::measure_read_bandwidth(0, 1U << 20U, 0.01);
    } catch (const std::invalid_argument&) {
        threw = true;
    }
    CHECK(threw);
    threw = false;
    try {
        (void)iris::probe::measure_read_bandwidth(1, 4096, 0.01);
    } catch (const std::invalid_argument&) {
        threw = true;
    }
    CHECK(threw);
    const auto measured = iris::probe::measure_read_bandwidth(2, 4U << 20U, 0.0);
    CHECK(measured.passes == 2);  // at least two passes even with no time budget
    CHECK(measured.read_bytes_per_s > 0);
    CHECK(measured.buffer_bytes == (4U << 20U));
}

TEST(installed_runtimes_answer_consistently) {
    // Whatever is installed here (lavapipe and PoCL in CI), the reports must hang together;
    // under AddressSanitizer this also runs our hand-declared structs against a real driver.
    const auto vulkan = iris::probe::probe_vulkan(iris::probe::default_vulkan_libraries());
    if (vulkan.status == iris::probe::ApiStatus::Ok) {
        CHECK(!vulkan.devices.empty());
        for (const auto& device : vulkan.devices) {
            CHECK(!device.name.empty());
            CHECK(!device.memory_heaps.empty());
        }
    } else {
        CHECK(!vulkan.detail.empty());
    }
    const auto opencl = iris::probe::probe_opencl(iris::probe::default_opencl_libraries());
    if (opencl.status == iris::probe::ApiStatus::Ok) {
        CHECK(!opencl.platforms.empty());
    } else {
        CHECK(!opencl.detail.empty());
    }
}

int main() {
    return iris::testing::run_all();
}
