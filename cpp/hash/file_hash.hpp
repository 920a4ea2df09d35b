// SHA-256 over files: whole-file digests, piece manifests (a digest per fixed-size piece,
// made in the same pass as the whole-file digest), parallel piece checks that say exactly
// which byte ranges are bad, and a bounded pool that hashes many files at once.
// Files are read with large positional reads (not mapped), so a file truncated while it is
// hashed is reported instead of killing the process with SIGBUS.
#pragma once

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "hash/sha256.hpp"

namespace iris::hash {

/// Shared between a running operation and whoever watches it. Atomics only: watching never
/// blocks the work, and the work never waits for the watcher.
struct Progress {
    std::atomic<uint64_t> bytes_done{0};
    std::atomic<uint64_t> bytes_total{0};
    std::atomic<bool> cancel_requested{false};
};

/// The operation stopped because Progress::cancel_requested was set.
class Cancelled : public std::runtime_error {
public:
    Cancelled() : std::runtime_error("cancelled") {}
};

/// A file's size, modification time or identity changed while it was being read, so the
/// digest describes no version of it.
class FileChangedError : public std::runtime_error {
public:
    explicit FileChangedError(std::string path);
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

/// A manifest that cannot describe this file (another size, a malformed piece list).
class ManifestMismatch : public std::invalid_argument {
public:
    ManifestMismatch(std::string path, const std::string& what);
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

inline constexpr uint64_t kDefaultPieceSize = uint64_t{64} << 20;

struct FileDigest {
    Sha256Digest sha256{};
    uint64_t size = 0;
};

struct Manifest {
    uint64_t size = 0;
    uint64_t piece_size = kDefaultPieceSize;
    Sha256Digest sha256{};
    std::vector<Sha256Digest> pieces;  // ceil(size / piece_size) digests
};

/// Threads to use when the caller says 0: one per core.
unsigned default_threads() noexcept;

FileDigest sha256_file(const std::string& path, Progress* progress = nullptr);

/// One pass over the file gives the whole-file digest and every piece's digest. With two or
/// more threads the whole-file digest runs on one while the others hash pieces, so the
/// manifest costs about what the whole-file digest alone costs.
Manifest build_manifest(const std::string& path, uint64_t piece_size, unsigned threads,
                        Progress* progress = nullptr);

/// Hashes every piece on `threads` threads and returns the indices of those that differ
/// from `manifest`. Throws ManifestMismatch when the file's size is not the manifest's.
std::vector<uint64_t> find_bad_pieces(const std::string& path, const Manifest& manifest,
                                      unsigned threads, Progress* progress = nullptr);

/// What hashing one of many files gave: a digest, or the error that stopped it.
struct FileOutcome {
    FileDigest digest;
    std::string error;     // empty on success
    int error_number = 0;  // errno for OS errors, 0 otherwise
    bool changed = false;  // the file changed while it was read
};

/// Hashes `paths` on up to `threads` threads (each file on one thread). Errors are per
/// file; only cancellation stops the whole batch.
std::vector<FileOutcome> sha256_files(const std::vector<std::string>& paths, unsigned threads,
                                      Progress* progress = nullptr);

}  // namespace iris::hash
