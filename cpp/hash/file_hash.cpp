#include "hash/file_hash.hpp"

#include <algorithm>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "common/byte_source.hpp"
#include "common/read_only_file.hpp"

namespace iris::hash {
namespace {

// Large enough that per-read overhead vanishes, small enough that memory stays flat and
// progress and cancellation are checked every few milliseconds.
constexpr size_t kReadChunk = size_t{4} << 20;

void check_cancel(const Progress* progress) {
    if (progress != nullptr && progress->cancel_requested.load(std::memory_order_relaxed)) {
        throw Cancelled();
    }
}

void add_progress(Progress* progress, uint64_t bytes) {
    if (progress != nullptr) {
        progress->bytes_done.fetch_add(bytes, std::memory_order_relaxed);
    }
}

void add_total(Progress* progress, uint64_t bytes) {
    if (progress != nullptr) {
        progress->bytes_total.fetch_add(bytes, std::memory_order_relaxed);
    }
}

/// Feeds bytes [begin, end) of `file` to `consume(data, size, offset)` chunk by chunk.
/// A short read means the file shrank underneath us.
template <class Consume>
void read_range(const ReadOnlyFile& file, uint64_t begin, uint64_t end,
                std::vector<uint8_t>& buffer, Progress* progress, Consume&& consume) {
    for (uint64_t offset = begin; offset < end;) {
        check_cancel(progress);
        const size_t want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), end - offset));
        const size_t got = file.read_at(offset, buffer.data(), want);
        if (got != want) {
            throw FileChangedError(file.path());
        }
        consume(buffer.data(), got, offset);
        offset += got;
    }
}

/// Like read_range, but the next chunk is read on another thread while `consume` works on
/// the current one, so the copy out of the page cache overlaps the hashing. For a single
/// stream on an otherwise idle core; two buffers, so memory stays flat.
template <class Consume>
void read_range_overlapped(const ReadOnlyFile& file, uint64_t begin, uint64_t end,
                           Progress* progress, Consume&& consume) {
    std::vector<uint8_t> buffers[2]
        = {std::vector<uint8_t>(kReadChunk), std::vector<uint8_t>(kReadChunk)};
    const auto read_chunk = [&](uint64_t offset, std::vector<uint8_t>& buffer) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), end - offset));
        if (file.read_at(offset, buffer.data(), want) != want) {
            throw FileChangedError(file.path());
        }
        return want;
    };
    if (begin >= end) {
        return;
    }
    size_t current = 0;
    size_t size = read_chunk(begin, buffers[current]);
    for (uint64_t offset = begin; offset < end;) {
        check_cancel(progress);
        const uint64_t next_offset = offset + size;
        std::future<size_t> next;
        if (next_offset < end) {
            next = std::async(std::launch::async, read_chunk, next_offset,
                              std::ref(buffers[1 - current]));
        }
        // If consume throws, the future's destructor waits for the read to finish.
        consume(buffers[current].data(), size, offset);
        offset = next_offset;
        if (next.valid()) {
            size = next.get();
            current = 1 - current;
        }
    }
}

void require_unchanged(const ReadOnlyFile& file) {
    if (!file.unchanged()) {
        throw FileChangedError(file.path());
    }
}

uint64_t piece_count(uint64_t size, uint64_t piece_size) {
    return size == 0 ? 0 : (size - 1) / piece_size + 1;
}

/// Runs `work(thread_index)` on `threads` threads and rethrows the first exception after
/// all have stopped (setting the cancel flag so the others stop early).
template <class Work>
void run_parallel(unsigned threads, Progress* progress, Work&& work) {
    std::vector<std::thread> pool;
    std::exception_ptr first_error;
    std::mutex error_mutex;
    Progress local;  // lets one failing thread stop the others when the caller gave none
    Progress* stop = progress != nullptr ? progress : &local;
    for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            try {
                work(t, stop);
            } catch (...) {
                const std::lock_guard lock(error_mutex);
                if (!first_error) {
                    first_error = std::current_exception();
                }
                stop->cancel_requested.store(true, std::memory_order_relaxed);
            }
        });
    }
    for (auto& thread : pool) {
        thread.join();
    }
    if (first_error) {
        std::rethrow_exception(first_error);
    }
}

/// Hashes pieces taken from a shared counter until none are left.
void hash_pieces(const ReadOnlyFile& file, uint64_t piece_size, std::atomic<uint64_t>& next,
                 std::vector<Sha256Digest>& out, Progress* progress, bool count_progress) {
    std::vector<uint8_t> buffer(kReadChunk);
    const uint64_t size = file.size();
    for (uint64_t piece = next++; piece < out.size(); piece = next++) {
        const uint64_t begin = piece * piece_size;
        const uint64_t end = std::min(size, begin + piece_size);
        Sha256 hasher;
        read_range(file, begin, end, buffer, progress,
                   [&](const uint8_t* data, size_t n, uint64_t) {
                       hasher.update(data, n);
                       if (count_progress) {
                           add_progress(progress, n);
                       }
                   });
        out[piece] = hasher.digest();
    }
}

}  // namespace

FileChangedError::FileChangedError(std::string path)
    : std::runtime_error(path + ": the file changed while it was being read; its digest is "
                                "not valid, read it again once nothing is writing to it")
    , path_(std::move(path)) {}

ManifestMismatch::ManifestMismatch(std::string path, const std::string& what)
    : std::invalid_argument(path + ": " + what), path_(std::move(path)) {}

unsigned default_threads() noexcept {
    return std::max(1u, std::thread::hardware_concurrency());
}

namespace {

FileDigest hash_whole_file(const std::string& path, Progress* progress, bool overlap_reads) {
    const ReadOnlyFile file(path);
    file.advise_sequential();
    add_total(progress, file.size());
    Sha256 hasher;
    const auto consume = [&](const uint8_t* data, size_t n, uint64_t) {
        hasher.update(data, n);
        add_progress(progress, n);
    };
    if (overlap_reads) {
        read_range_overlapped(file, 0, file.size(), progress, consume);
    } else {
        std::vector<uint8_t> buffer(kReadChunk);
        read_range(file, 0, file.size(), buffer, progress, consume);
    }
    require_unchanged(file);
    return {hasher.digest(), file.size()};
}

}  // namespace

FileDigest sha256_file(const std::string& path, Progress* progress) {
    return hash_whole_file(path, progress, /*overlap_reads=*/true);
}

Manifest build_manifest(const std::string& path, uint64_t piece_size, unsigned threads,
                        Progress* progress) {
    if (piece_size == 0 || piece_size % 64 != 0) {
        throw std::invalid_argument("piece size must be a positive multiple of 64 bytes");
    }
    threads = threads == 0 ? default_threads() : threads;
    const ReadOnlyFile file(path);
    file.advise_sequential();
    Manifest manifest;
    manifest.size = file.size();
    manifest.piece_size = piece_size;
    manifest.pieces.resize(static_cast<size_t>(piece_count(manifest.size, piece_size)));
    add_total(progress, manifest.size);  // progress follows the whole-file pass

    if (threads == 1) {
        // One thread: feed each chunk to both hashers (chunks never straddle a piece).
        std::vector<uint8_t> buffer(
            static_cast<size_t>(std::min<uint64_t>(kReadChunk, piece_size)));
        Sha256 whole;
        Sha256 piece;
        read_range(file, 0, manifest.size, buffer, progress,
                   [&](const uint8_t* data, size_t n, uint64_t offset) {
                       whole.update(data, n);
                       piece.update(data, n);
                       const uint64_t end = offset + n;
                       if (end % piece_size == 0 || end == manifest.size) {
                           manifest.pieces[static_cast<size_t>((end - 1) / piece_size)]
                               = piece.digest();
                           piece = Sha256();
                       }
                       add_progress(progress, n);
                   });
        manifest.sha256 = whole.digest();
    } else {
        // The whole-file digest is inherently sequential: it gets a thread of its own, and
        // the other threads share the pieces. Both read the same bytes from the page cache.
        std::atomic<uint64_t> next_piece{0};
        run_parallel(threads, progress, [&](unsigned t, Progress* stop) {
            if (t == 0) {
                std::vector<uint8_t> buffer(kReadChunk);
                Sha256 whole;
                read_range(file, 0, manifest.size, buffer, stop,
                           [&](const uint8_t* data, size_t n, uint64_t) {
                               whole.update(data, n);
                               add_progress(progress, n);
                           });
                manifest.sha256 = whole.digest();
            } else {
                hash_pieces(file, piece_size, next_piece, manifest.pieces, stop, false);
            }
        });
    }
    require_unchanged(file);
    return manifest;
}

std::vector<uint64_t> find_bad_pieces(const std::string& path, const Manifest& manifest,
                                      unsigned threads, Progress* progress) {
    const ReadOnlyFile file(path);
    if (file.size() != manifest.size) {
        throw ManifestMismatch(path, "the file is " + std::to_string(file.size())
                                         + " bytes but its manifest describes "
                                         + std::to_string(manifest.size) + " bytes");
    }
    if (manifest.piece_size == 0
        || manifest.pieces.size() != piece_count(manifest.size, manifest.piece_size)) {
        throw ManifestMismatch(path, "the manifest lists " + std::to_string(manifest.pieces.size())
                                         + " pieces, which does not fit its size and piece size");
    }
    threads = std::max(
        1u, std::min<unsigned>(threads == 0 ? default_threads() : threads,
                               static_cast<unsigned>(std::max<size_t>(1, manifest.pieces.size()))));
    add_total(progress, manifest.size);
    std::vector<Sha256Digest> actual(manifest.pieces.size());
    std::atomic<uint64_t> next_piece{0};
    run_parallel(threads, progress, [&](unsigned, Progress* stop) {
        hash_pieces(file, manifest.piece_size, next_piece, actual, stop, true);
    });
    require_unchanged(file);
    std::vector<uint64_t> bad;
    for (size_t i = 0; i < actual.size(); ++i) {
        if (actual[i] != manifest.pieces[i]) {
            bad.push_back(i);
        }
    }
    return bad;
}

std::vector<FileOutcome> sha256_files(const std::vector<std::string>& paths, unsigned threads,
                                      Progress* progress) {
    std::vector<FileOutcome> outcomes(paths.size());
    threads = std::max(
        1u, std::min<unsigned>(threads == 0 ? default_threads() : threads,
                               static_cast<unsigned>(std::max<size_t>(1, paths.size()))));
    std::atomic<size_t> next{0};
    run_parallel(threads, progress, [&](unsigned, Progress*) {
        for (size_t i = next++; i < paths.size(); i = next++) {
            FileOutcome& outcome = outcomes[i];
            try {
                // Each pool thread already keeps a core busy: no reader thread of its own.
                outcome.digest = hash_whole_file(paths[i], progress, /*overlap_reads=*/false);
            } catch (const FileChangedError& error) {
                outcome.error = error.what();
                outcome.changed = true;
            } catch (const FileError& error) {
                // Not what(): std::system_error appends strerror a second time.
                outcome.error = error.path() + ": " + error.reason();
                outcome.error_number = error.code().value();
            }
        }
    });
    return outcomes;
}

}  // namespace iris::hash
