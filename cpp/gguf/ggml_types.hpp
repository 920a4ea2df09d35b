// The ggml tensor type table: block size and bytes per block for every type id a GGUF file
// may name. Data, not code: adding a type is adding a row.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace iris::gguf {

enum class TypeStatus : uint8_t {
    Current,   // a storage type files use today
    Internal,  // ggml uses it for intermediate results; valid in a file, rarely seen
    Removed,   // the id once existed and was withdrawn: a file that uses it cannot be loaded
};

struct GGMLType {
    uint32_t id;
    const char* name;
    uint32_t block_size;  // elements per block; 0 for removed types
    uint32_t type_size;   // bytes per block; 0 for removed types
    TypeStatus status;
};

/// Every id known to this build, in id order (ids with no row are unknown).
std::span<const GGMLType> ggml_type_table() noexcept;

/// The row for `id`, or nullptr when the id is unknown to this build.
const GGMLType* find_ggml_type(uint32_t id) noexcept;

/// Bytes a tensor of `type` with `n_elements` elements and row length `row_length` occupies,
/// or nullopt when the row is not a whole number of blocks or the size overflows 64 bits.
std::optional<uint64_t> tensor_nbytes(const GGMLType& type, uint64_t row_length,
                                      uint64_t n_elements) noexcept;

}  // namespace iris::gguf
