// A short measurement of how fast the CPU cores can stream memory, the number that bounds
// token generation on a CPU (every token reads all the weights once).
#pragma once

#include <cstdint>

namespace iris::probe {

struct BandwidthMeasurement {
    double read_bytes_per_s = 0;  // the best pass
    uint32_t threads = 0;
    uint64_t buffer_bytes = 0;
    uint32_t passes = 0;
    double elapsed_s = 0;  // including the buffer's first touch
};

/// Reads a `buffer_bytes` buffer (make it several times the last-level cache) with `threads`
/// threads, pass after pass, until `time_budget_s` is spent (at least two passes), and keeps
/// the fastest pass. Throws std::invalid_argument for zero threads or a buffer under 1 MiB,
/// and std::bad_alloc when the buffer cannot be allocated.
BandwidthMeasurement measure_read_bandwidth(uint32_t threads, uint64_t buffer_bytes,
                                            double time_budget_s);

}  // namespace iris::probe
