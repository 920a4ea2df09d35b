// GGUF header parser: walks magic, key/value records and tensor infos of a GGUF file in
// place, checking every count, length and offset against the bytes that are really there.
// Values are not copied: records hold offsets into the source, and string arrays carry a
// sparse index so that element i is found without materialising the array.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/byte_source.hpp"

namespace iris::gguf {

enum class ValueType : uint32_t {
    Uint8 = 0,
    Int8 = 1,
    Uint16 = 2,
    Int16 = 3,
    Uint32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    Uint64 = 10,
    Int64 = 11,
    Float64 = 12,
};
inline constexpr uint32_t kValueTypeCount = 13;

/// Bytes one value of a fixed-size type occupies; 0 for String and Array.
uint64_t fixed_value_size(ValueType type) noexcept;
const char* value_type_name(ValueType type) noexcept;

enum class ErrorKind : uint8_t {
    Malformed,     // the bytes break the format or one of its limits
    Truncated,     // the file ends before its header or data section does
    NeedMoreData,  // a buffer holding a file's first bytes is too short to finish the walk
};

/// Any violation found while parsing. `offset` is the byte where the bad field starts;
/// `bytes_needed` is the total source length that would let the walk go on (Truncated and
/// NeedMoreData only).
class GGUFError : public std::invalid_argument {
public:
    GGUFError(ErrorKind kind, std::string source_name, uint64_t offset, const std::string& what,
              uint64_t bytes_needed = 0);

    [[nodiscard]] ErrorKind kind() const noexcept { return kind_; }
    [[nodiscard]] const std::string& source_name() const noexcept { return source_name_; }
    [[nodiscard]] uint64_t offset() const noexcept { return offset_; }
    [[nodiscard]] uint64_t bytes_needed() const noexcept { return bytes_needed_; }

private:
    ErrorKind kind_;
    std::string source_name_;
    uint64_t offset_;
    uint64_t bytes_needed_;
};

/// Caps applied before anything is sized from a file's claims. The defaults admit every
/// real model seen so far with wide margins (the largest vocabularies hold ~10^6 strings).
struct Limits {
    uint64_t max_string_bytes = uint64_t{1} << 30;  // as llama.cpp's GGUF_MAX_STRING_LENGTH
    uint64_t max_key_bytes = 65535;                 // the GGUF spec's key limit
    uint64_t max_tensor_name_bytes = 64;            // the GGUF spec's tensor-name limit
    uint64_t max_array_elements = uint64_t{1} << 30;
    uint32_t max_array_depth = 8;  // nesting of arrays inside arrays
    uint64_t max_kv_count = uint64_t{1} << 20;
    uint64_t max_tensor_count = uint64_t{1} << 20;
    uint64_t max_alignment = uint64_t{1} << 30;
};

inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr uint32_t kMaxDims = 4;
/// A string array records the offset of every kStringIndexStride-th element.
inline constexpr uint64_t kStringIndexStride = 64;

/// A value in place. `offset` is absolute: the scalar's bytes, a string's first byte, or an
/// array's first element.
struct Value {
    ValueType type = ValueType::Uint8;
    ValueType element_type = ValueType::Uint8;  // arrays only
    uint64_t offset = 0;
    uint64_t count = 0;       // string: bytes; array: elements; scalar: 1
    uint64_t size_bytes = 0;  // payload bytes on disk (without length prefixes and headers)
    // String arrays: index into Header::string_arrays. Arrays of arrays: index of the first
    // of `count` consecutive child values in Header::nested_values.
    uint32_t aux = 0;
};

struct KeyValue {
    uint64_t key_offset = 0;
    uint32_t key_size = 0;
    Value value;
};

struct StringArrayIndex {
    uint64_t count = 0;
    uint64_t end = 0;  // one past the last byte of the last string
    // checkpoints[k] = offset of the length prefix of element k * kStringIndexStride.
    std::vector<uint64_t> checkpoints;
};

struct TensorInfo {
    uint64_t record_offset = 0;  // where the tensor's info record starts, for messages
    uint64_t name_offset = 0;
    uint32_t name_size = 0;
    uint32_t n_dims = 0;
    std::array<uint64_t, kMaxDims> ne{1, 1, 1, 1};  // ggml order: ne[0] is the row length
    uint32_t type = 0;
    uint64_t offset = 0;  // relative to the data section, as stored
    uint64_t n_elements = 0;
    std::optional<uint64_t> nbytes;  // empty when the type is unknown to this build
};

struct Warning {
    uint64_t offset;
    std::string message;
};

struct Header {
    uint32_t version = 0;
    bool big_endian = false;
    uint32_t length_size = 8;  // bytes of string lengths, counts and dims: 4 in GGUF v1
    uint64_t n_tensors = 0;
    uint64_t n_kv = 0;
    uint64_t alignment = kDefaultAlignment;
    uint64_t end_of_kvs = 0;
    uint64_t end_of_tensor_infos = 0;
    uint64_t data_offset = 0;  // absolute start of the tensor data section
    uint64_t data_size = 0;    // sum of padded tensor sizes (unknown-type tensors count as 0)
    std::optional<uint64_t> file_size;
    std::vector<KeyValue> kvs;
    std::vector<TensorInfo> tensors;
    std::vector<Value> nested_values;
    std::vector<StringArrayIndex> string_arrays;
    std::vector<Warning> warnings;
    uint64_t warnings_dropped = 0;  // warnings past the cap, counted but not kept
};

/// Parses the header held in `data[0, available)`. `file_size` is the length of the whole
/// file when known: with it, claims past the end are Truncated errors and tensor data ranges
/// are checked against it; when it exceeds `available` (or is unknown), running out of
/// bytes is a NeedMoreData error naming the length to retry with. `name` is used in messages.
Header parse_header(const uint8_t* data, uint64_t available, std::optional<uint64_t> file_size,
                    const std::string& name, const Limits& limits = {});

/// A parsed header with the bytes it points into.
struct Document {
    std::shared_ptr<const ByteSource> source;
    Header header;

    [[nodiscard]] std::string_view bytes_at(uint64_t offset, uint64_t size) const;
    [[nodiscard]] std::string_view key(const KeyValue& kv) const {
        return bytes_at(kv.key_offset, kv.key_size);
    }
    [[nodiscard]] std::string_view tensor_name(const TensorInfo& t) const {
        return bytes_at(t.name_offset, t.name_size);
    }
};

/// Opens and parses a file. The file is mapped, not read; when it cannot be mapped the
/// header is read into memory in growing steps instead.
std::shared_ptr<const Document> open_file(const std::string& path, const Limits& limits = {});

/// Parses bytes a caller already holds (for example the first N bytes of a remote file).
std::shared_ptr<const Document> parse_source(std::shared_ptr<const ByteSource> source,
                                             std::optional<uint64_t> file_size,
                                             const Limits& limits = {});

/// A fixed-size value as the widest type of its kind (unsigned, signed, floating, bool).
using Scalar = std::variant<uint64_t, int64_t, double, bool>;

/// Decodes a fixed-size value (not String or Array) in the file's byte order.
Scalar read_scalar(const Document& document, const Value& value);

/// Sequential reader over one string array, from any start element.
class StringCursor {
public:
    StringCursor(const Document& document, const StringArrayIndex& index, uint64_t start);
    /// The next element's bytes. Throws GGUFError if the bytes no longer match the parse
    /// (the file was changed underneath its mapping).
    std::string_view next();

private:
    const Document& document_;
    const StringArrayIndex& index_;
    uint64_t position_;
};

/// Element `i` of a string array; throws std::out_of_range past the end.
std::string_view string_at(const Document& document, const StringArrayIndex& index, uint64_t i);

}  // namespace iris::gguf
