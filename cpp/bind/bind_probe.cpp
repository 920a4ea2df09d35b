// Python bindings for the device probes. Plain dicts: the Python device profile owns the
// names and types. The GIL is released while sysfs is read, drivers answer and memory is
// streamed.
#include "pybind.hpp"  // must be first

#include <optional>
#include <string>
#include <vector>

#include "probe/bandwidth.hpp"
#include "probe/cpu.hpp"
#include "probe/cuda.hpp"
#include "probe/opencl.hpp"
#include "probe/soc.hpp"
#include "probe/vulkan.hpp"

namespace iris::bind {
namespace {

using Libraries = std::optional<std::vector<std::string>>;

template <typename Report>
py::dict report_header(const Report& report) {
    py::dict out;
    out["status"] = probe::to_string(report.status);
    out["detail"] = report.detail;
    out["library"] = report.library;
    return out;
}

py::dict vulkan_dict(const probe::VulkanReport& report) {
    py::dict out = report_header(report);
    out["instance_version"] = report.instance_version;
    py::list devices;
    for (const probe::VulkanDevice& device : report.devices) {
        py::list heaps;
        for (const probe::VulkanMemoryHeap& heap : device.memory_heaps) {
            py::dict entry;
            entry["size_bytes"] = heap.size_bytes;
            entry["device_local"] = heap.device_local;
            heaps.append(entry);
        }
        const auto tristate = [](int value) -> py::object {
            return value < 0 ? py::object(py::none()) : py::object(py::bool_(value != 0));
        };
        py::dict entry;
        entry["name"] = device.name;
        entry["vendor_id"] = device.vendor_id;
        entry["device_id"] = device.device_id;
        entry["device_type"] = device.device_type;
        entry["api_version"] = device.api_version;
        entry["driver_version"] = device.driver_version;
        entry["driver_name"] = device.driver_name;
        entry["driver_info"] = device.driver_info;
        entry["memory_heaps"] = heaps;
        entry["subgroup_size"] = device.subgroup_size == 0
                                     ? py::object(py::none())
                                     : py::object(py::int_(device.subgroup_size));
        entry["storage_buffer_16bit"] = tristate(device.storage_buffer_16bit);
        entry["shader_float16"] = tristate(device.shader_float16);
        entry["extensions"] = device.extensions;
        devices.append(entry);
    }
    out["devices"] = devices;
    return out;
}

py::dict opencl_dict(const probe::OpenCLReport& report) {
    py::dict out = report_header(report);
    py::list platforms;
    for (const probe::OpenCLPlatform& platform : report.platforms) {
        py::list devices;
        for (const probe::OpenCLDevice& device : platform.devices) {
            py::dict entry;
            entry["name"] = device.name;
            entry["vendor"] = device.vendor;
            entry["vendor_id"] = device.vendor_id;
            entry["version"] = device.version;
            entry["driver_version"] = device.driver_version;
            entry["opencl_c_version"] = device.opencl_c_version;
            entry["device_type"] = device.device_type;
            entry["global_memory_bytes"] = device.global_memory_bytes;
            entry["max_allocation_bytes"] = device.max_allocation_bytes;
            entry["compute_units"] = device.compute_units;
            entry["max_clock_mhz"] = device.max_clock_mhz;
            entry["host_unified_memory"] = device.host_unified_memory;
            entry["extensions"] = device.extensions;
            devices.append(entry);
        }
        py::dict entry;
        entry["name"] = platform.name;
        entry["vendor"] = platform.vendor;
        entry["version"] = platform.version;
        entry["error"] = platform.error;
        entry["devices"] = devices;
        platforms.append(entry);
    }
    out["platforms"] = platforms;
    return out;
}

py::dict cuda_dict(const probe::CudaReport& report) {
    py::dict out = report_header(report);
    out["driver_version"] = report.driver_version;
    py::list devices;
    for (const probe::CudaDevice& device : report.devices) {
        py::dict entry;
        entry["name"] = device.name;
        entry["compute_capability"] = std::to_string(device.compute_capability_major) + "."
                                      + std::to_string(device.compute_capability_minor);
        entry["multiprocessors"] = device.multiprocessors;
        entry["memory_bytes"] = device.memory_bytes;
        devices.append(entry);
    }
    out["devices"] = devices;
    return out;
}

/// Runs a GPU probe without the GIL over `libraries`, or the platform's defaults.
template <typename Report>
Report run_probe(const Libraries& libraries, std::vector<std::string> (*defaults)(),
                 Report (*probe_api)(const std::vector<std::string>&)) {
    const std::vector<std::string> names = libraries ? *libraries : defaults();
    const py::gil_scoped_release release;
    return probe_api(names);
}

}  // namespace

void bind_probe(py::module_& m) {
    m.def("probe_cpu_features", [] {
        probe::CpuFeatures cpu;
        {
            const py::gil_scoped_release release;
            cpu = probe::probe_cpu_features();
        }
        py::dict out;
        out["architecture"] = cpu.architecture;
        out["vendor"] = cpu.vendor;
        out["brand"] = cpu.brand;
        out["features"] = cpu.features;
        out["sve_vector_bits"] = cpu.sve_vector_bits;
        return out;
    });
    m.def(
        "probe_core_topology",
        [](const std::string& sysfs_cpu_root) {
            probe::CoreTopology topology;
            {
                const py::gil_scoped_release release;
                topology = probe::probe_core_topology(sysfs_cpu_root);
            }
            py::list clusters;
            for (const probe::CoreCluster& cluster : topology.clusters) {
                py::dict entry;
                entry["max_frequency_khz"] = cluster.max_frequency_khz;
                entry["cpus"] = cluster.cpus;
                clusters.append(entry);
            }
            py::dict out;
            out["logical_cores"] = topology.logical_cores;
            out["physical_cores"] = topology.physical_cores;
            out["clusters"] = clusters;
            out["from_sysfs"] = topology.from_sysfs;
            return out;
        },
        "sysfs_cpu_root"_a = "/sys/devices/system/cpu");
    m.def(
        "parse_cpuinfo",
        [](const std::string& text) {
            const probe::CpuInfoText info = probe::parse_cpuinfo(text);
            py::dict out;
            out["hardware"] = info.hardware;
            out["model_name"] = info.model_name;
            out["features"] = info.features;
            out["cpu_parts"] = info.cpu_parts;
            out["implementers"] = info.implementers;
            out["processors"] = info.processors;
            return out;
        },
        "text"_a);
    m.def(
        "read_soc_files",
        [](const std::string& soc_root) {
            probe::SocFiles soc;
            {
                const py::gil_scoped_release release;
                soc = probe::read_soc_files(soc_root);
            }
            py::dict out;
            out["machine"] = soc.machine;
            out["family"] = soc.family;
            out["soc_id"] = soc.soc_id;
            out["vendor"] = soc.vendor;
            out["revision"] = soc.revision;
            return out;
        },
        "soc_root"_a = "/sys/devices/soc0");
    m.def(
        "measure_read_bandwidth",
        [](uint32_t threads, uint64_t buffer_bytes, double time_budget_s) {
            probe::BandwidthMeasurement measured;
            {
                const py::gil_scoped_release release;
                measured = probe::measure_read_bandwidth(threads, buffer_bytes, time_budget_s);
            }
            py::dict out;
            out["read_bytes_per_s"] = measured.read_bytes_per_s;
            out["threads"] = measured.threads;
            out["buffer_bytes"] = measured.buffer_bytes;
            out["passes"] = measured.passes;
            out["elapsed_s"] = measured.elapsed_s;
            return out;
        },
        "threads"_a, "buffer_bytes"_a, "time_budget_s"_a);
    m.def(
        "probe_vulkan",
        [](const Libraries& libraries) {
            return vulkan_dict(
                run_probe(libraries, probe::default_vulkan_libraries, probe::probe_vulkan));
        },
        "libraries"_a = py::none());
    m.def(
        "probe_opencl",
        [](const Libraries& libraries) {
            return opencl_dict(
                run_probe(libraries, probe::default_opencl_libraries, probe::probe_opencl));
        },
        "libraries"_a = py::none());
    m.def(
        "probe_cuda",
        [](const Libraries& libraries) {
            return cuda_dict(
                run_probe(libraries, probe::default_cuda_libraries, probe::probe_cuda));
        },
        "libraries"_a = py::none());
}

}  // namespace iris::bind
