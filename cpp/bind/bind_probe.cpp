// Python bindings for the CPU probe. Plain dicts: the Python device profile owns the names
// and types. The GIL is released while sysfs is read.
#include "pybind.hpp"  // must be first

#include <string>

#include "probe/cpu.hpp"

namespace iris::bind {

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
            return out;
        },
        "sysfs_cpu_root"_a = "/sys/devices/system/cpu");
}

}  // namespace iris::bind
