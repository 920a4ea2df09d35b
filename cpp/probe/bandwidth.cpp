#include "probe/bandwidth.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

namespace iris::probe {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kMinimumBuffer = 1U << 20U;
constexpr uint32_t kMaxPasses = 1000;

// Four independent accumulators keep the loop bound by loads, not by one add chain.
uint64_t sum_words(const uint64_t* words, size_t count) {
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 4 <= count; i += 4) {
        a += words[i];
        b += words[i + 1];
        c += words[i + 2];
        d += words[i + 3];
    }
    for (; i < count; ++i) {
        a += words[i];
    }
    return a + b + c + d;
}

/// Runs `work(begin, end)` over `count` words split evenly across `threads` threads.
template <typename Work>
void parallel_over(size_t count, uint32_t threads, Work work) {
    std::vector<std::thread> workers;
    workers.reserve(threads);
    const size_t share = count / threads;
    for (uint32_t t = 0; t < threads; ++t) {
        const size_t begin = share * t;
        const size_t end = t + 1 == threads ? count : begin + share;
        workers.emplace_back(work, begin, end);
    }
    for (std::thread& worker : workers) {
        worker.join();
    }
}

}  // namespace

BandwidthMeasurement measure_read_bandwidth(uint32_t threads, uint64_t buffer_bytes,
                                            double time_budget_s) {
    if (threads == 0) {
        throw std::invalid_argument("bandwidth measurement needs at least one thread");
    }
    if (buffer_bytes < kMinimumBuffer) {
        throw std::invalid_argument("bandwidth measurement needs a buffer of at least 1 MiB");
    }
    const auto started = Clock::now();
    const size_t count = static_cast<size_t>(buffer_bytes / sizeof(uint64_t));
    std::unique_ptr<uint64_t[]> buffer(new (std::nothrow) uint64_t[count]);
    if (!buffer) {
        throw std::bad_alloc();
    }
    uint64_t* words = buffer.get();
    // First touch from the threads that will read, so pages land near them (NUMA).
    parallel_over(count, threads, [words](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) {
            words[i] = i;
        }
    });

    // Each thread publishes its sum, so the reads cannot be optimised away.
    std::atomic<uint64_t> sink{0};
    BandwidthMeasurement result;
    result.threads = threads;
    result.buffer_bytes = count * sizeof(uint64_t);
    double best_s = 0;
    while (result.passes < kMaxPasses) {
        const auto pass_start = Clock::now();
        parallel_over(count, threads, [words, &sink](size_t begin, size_t end) {
            sink.fetch_add(sum_words(words + begin, end - begin), std::memory_order_relaxed);
        });
        const double pass_s = std::chrono::duration<double>(Clock::now() - pass_start).count();
        ++result.passes;
        if (best_s == 0 || pass_s < best_s) {
            best_s = pass_s;
        }
        const double total_s = std::chrono::duration<double>(Clock::now() - started).count();
        if (result.passes >= 2 && total_s >= time_budget_s) {
            break;
        }
    }
    result.elapsed_s = std::chrono::duration<double>(Clock::now() - started).count();
    result.read_bytes_per_s = best_s > 0 ? static_cast<double>(result.buffer_bytes) / best_s : 0.0;
    return result;
}

}  // namespace iris::probe
